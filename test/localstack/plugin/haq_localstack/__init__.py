"""A LocalStack Lambda runtime executor that runs Node.js handlers as host processes."""
