/**
 * cdk-nag v3 reports through CDK's policy-validation plugins; a finding is acknowledged
 * (suppressed) with `Validations.of(construct).acknowledge({ id, reason })`, one id per
 * finding, e.g. `AwsSolutions-IAM5[Resource::*]`. Every acknowledgement carries a reason.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * Acknowledges AwsSolutions-IAM5 (wildcard resource) for each resource, named the way
 * cdk-nag renders it: `Fn::GetAtt` as `<Logical.Attr>`, `Ref` as `<Logical>`, joins inlined.
 */
export function acknowledgeWildcardResources(scope: IConstruct, resources: string[], reason: string): void {
  const stack = Stack.of(scope);
  for (const resource of resources) {
    acknowledge(scope, `AwsSolutions-IAM5[Resource::${renderForNag(stack.resolve(resource))}]`, reason);
  }
}

export function renderForNag(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if (Array.isArray(v['Fn::GetAtt'])) return `<${(v['Fn::GetAtt'] as string[]).join('.')}>`;
  if (typeof v.Ref === 'string') return `<${v.Ref}>`;
  if (Array.isArray(v['Fn::Join'])) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(renderForNag).join(sep);
  }
  return JSON.stringify(value);
}
