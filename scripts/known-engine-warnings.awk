# Filters npm's stderr: drops the EBADENGINE block of a dependency listed in `known` (a
# space-separated list of package names, -v known="a b") and passes every other line through,
# other EBADENGINE blocks included. A listed package declares a newer Node than haq needs
# because haq supplies the one newer API it uses (see scripts/ensure-deps.sh).
BEGIN { n = split(known, names, " "); for (i = 1; i <= n; i++) skip[names[i]] = 1 }
/^npm warn EBADENGINE Unsupported engine \{$/ { block = $0 "\n"; open = 1; drop = 0; next }
open {
  block = block $0 "\n"
  if (match($0, /package: '[^']+@/)) {
    pkg = substr($0, RSTART + 10, RLENGTH - 11)
    if (pkg in skip) drop = 1
  }
  if ($0 ~ /^npm warn EBADENGINE \}$/) { if (!drop) printf "%s", block; open = 0 }
  next
}
{ print }
END { if (open) printf "%s", block }
