// Least privilege, proven rather than asserted (docs/testing.md, "Least privilege").
//
// moto does not evaluate IAM policies, so this script does, with a real evaluator
// (@cloud-copilot/iam-simulate), over the template's policies as CloudFormation
// would resolve them:
//   1. every call the suite's functions made (recorded by harness/moto_server.py:
//      principal, action, resource ARN, aws:TagKeys) must be allowed by the policy
//      of the template's function whose role the caller stands for, resolved for
//      the tests' parameters;
//   2. every probe in expectations.json must get the decision it names, under the
//      parameters given there: the attempts that must fail (a user outside
//      ManagedUserPath, a secret outside the prefix, a reserved tag, another bus, a
//      role not in AssumableRoleArns) and, beside them, the ones that must work, so
//      a denial cannot pass by denying everything.
//
// The member-account template's roles (deploy/member-account.yaml) are checked the
// same way: calls made with a function's session of one of them, and their probes.
//
// Usage: node check.mjs TEMPLATE MEMBER_TEMPLATE CALLS_JSONL EXPECTATIONS_JSON
// Exit 0 when all hold, 1 otherwise; prints the counts either way.

import { readFileSync } from 'node:fs'
import yaml from 'js-yaml'
import { runSimulation } from '@cloud-copilot/iam-simulate'

const ACCOUNT = '123456789012'
const REGION = 'us-east-1'
const NO_VALUE = Symbol('AWS::NoValue')

// CloudFormation's short forms, read as their long forms.
const tag = (name, kind, key) =>
  new yaml.Type(name, { kind, construct: (data) => ({ [key]: data }) })
const intrinsics = [
  ['!Ref', 'Ref'], ['!Sub', 'Fn::Sub'], ['!GetAtt', 'Fn::GetAtt'], ['!Join', 'Fn::Join'],
  ['!If', 'Fn::If'], ['!Equals', 'Fn::Equals'], ['!Not', 'Fn::Not'], ['!Or', 'Fn::Or'],
  ['!And', 'Fn::And'], ['!Condition', 'Condition'], ['!Select', 'Fn::Select'], ['!Split', 'Fn::Split'],
]
const schema = yaml.DEFAULT_SCHEMA.extend(
  intrinsics.flatMap(([name, key]) => ['scalar', 'sequence', 'mapping'].map((kind) => tag(name, kind, key))),
)

/** A function of the template, as its ARN stands in the probes. */
const functionArn = (id) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:test-${id}`

/** The template's value of `node` for these parameters, intrinsics resolved. */
function resolver(template, parameters, account = ACCOUNT) {
  const pseudo = {
    'AWS::AccountId': account, 'AWS::Region': REGION, 'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com', 'AWS::StackName': 'test', 'AWS::NoValue': NO_VALUE,
  }
  const param = (name) => {
    const declared = template.Parameters?.[name]
    if (!declared) return undefined
    const value = name in parameters ? parameters[name] : declared.Default ?? ''
    return declared.Type === 'CommaDelimitedList'
      ? String(value).split(',').map((v) => v.trim()).filter((v) => v !== '')
      : String(value)
  }
  // A resource's Ref and attributes stand in as recognisable ARNs.
  const resourceRef = (id) => {
    const type = template.Resources?.[id]?.Type
    if (type === 'AWS::SecretsManager::Secret') return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${id}-AbCdEf`
    if (type === 'AWS::IAM::Role') return id
    if (type === 'AWS::Serverless::Function') return functionArn(id)
    return `arn:aws:test:${REGION}:${ACCOUNT}:${id}`
  }
  const ref = (name) => {
    if (name in pseudo) return pseudo[name]
    const value = param(name)
    if (value !== undefined) return value
    if (template.Resources?.[name]) return resourceRef(name)
    throw new Error(`unknown Ref ${name}`)
  }
  const conditions = {}
  const condition = (name) => {
    if (!(name in conditions)) conditions[name] = Boolean(resolve(template.Conditions[name]))
    return conditions[name]
  }
  function resolve(node) {
    if (Array.isArray(node)) return node.map(resolve).filter((v) => v !== NO_VALUE)
    if (node === null || typeof node !== 'object') return node
    const keys = Object.keys(node)
    if (keys.length === 1) {
      const [key] = keys
      const arg = node[key]
      switch (key) {
        case 'Ref': return ref(arg)
        case 'Condition': return condition(arg)
        case 'Fn::If': return condition(arg[0]) ? resolve(arg[1]) : resolve(arg[2])
        case 'Fn::Equals': return String(resolve(arg[0])) === String(resolve(arg[1]))
        case 'Fn::Not': return !resolve(arg[0])
        case 'Fn::Or': return arg.some((c) => resolve(c))
        case 'Fn::And': return arg.every((c) => resolve(c))
        case 'Fn::Join': return resolve(arg[1]).join(arg[0])
        case 'Fn::Select': return resolve(arg[1])[Number(resolve(arg[0]))]
        case 'Fn::Split': return String(resolve(arg[1])).split(arg[0])
        case 'Fn::GetAtt': {
          const [id, attribute] = Array.isArray(arg) ? arg : arg.split('.')
          if (template.Resources?.[id]?.Type === 'AWS::Serverless::Function' && attribute === 'Arn') return functionArn(id)
          return `arn:aws:test:${REGION}:${ACCOUNT}:${id}/${attribute}`
        }
        case 'Fn::Sub': {
          const [text, vars] = Array.isArray(arg) ? [arg[0], resolve(arg[1])] : [arg, {}]
          return text.replace(/\$\{([^}]+)\}/g, (_, name) => {
            if (name in vars) return vars[name]
            if (name.includes('.')) return resolve({ 'Fn::GetAtt': name })
            const value = ref(name)
            return Array.isArray(value) ? value.join(',') : value
          })
        }
      }
    }
    const out = {}
    for (const [key, value] of Object.entries(node)) {
      const resolved = resolve(value)
      if (resolved !== NO_VALUE) out[key] = resolved
    }
    return out
  }
  return resolve
}

/** The member template's roles' inline policies, resolved, under the names
 * harness/moto_server.py records their sessions as: { MemberAuditRole: [...] }. */
function memberRolePolicies(template, parameters, account = ACCOUNT) {
  const resolve = resolver(template, parameters, account)
  const policies = {}
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::IAM::Role') continue
    if (resource.Condition && !resolve({ Condition: resource.Condition })) continue
    policies[`Member${id}`] = resolve(resource.Properties.Policies ?? []).map((policy) => ({
      name: `${id}-${policy.PolicyName}`,
      policy: policy.PolicyDocument,
    }))
  }
  return policies
}

/** Each function's (and state machine's) inline policies, resolved, for the
 * resources the parameters create: { LogicalId: [policy, ...] }. */
function functionPolicies(template, parameters) {
  const resolve = resolver(template, parameters)
  const policies = {}
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (!['AWS::Serverless::Function', 'AWS::Serverless::StateMachine'].includes(resource.Type)) continue
    if (resource.Condition && !resolve({ Condition: resource.Condition })) continue
    policies[id] = resolve(resource.Properties.Policies ?? []).map((policy, i) => ({
      name: `${id}-policy-${i}`,
      policy,
    }))
  }
  // Policies of their own attached to a function's role (SAM names it
  // <Function>Role): the ones that name the function itself.
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::IAM::RolePolicy') continue
    if (resource.Condition && !resolve({ Condition: resource.Condition })) continue
    const role = resource.Properties.RoleName?.Ref ?? ''
    const owner = role.endsWith('Role') ? role.slice(0, -'Role'.length) : ''
    if (!(owner in policies)) throw new Error(`${id}: the role ${role} is no function's`)
    policies[owner].push({ name: id, policy: resolve(resource.Properties.PolicyDocument) })
  }
  return policies
}

async function decide(policies, request) {
  const result = await runSimulation(
    {
      request: {
        principal: `arn:aws:iam::${request.account ?? ACCOUNT}:role/test-${request.principal}Role`,
        action: request.action,
        resource: { resource: request.resource, accountId: request.account ?? ACCOUNT },
        contextVariables: request.context ?? {},
      },
      identityPolicies: policies[request.principal] ?? [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  )
  if (result.errors) throw new Error(`${describe(request)}: ${JSON.stringify(result.errors)}`)
  // A resource of "*" is answered for every resource type of the action.
  return result.result?.analysis?.result ?? result.overallResult
}

const describe = (r) =>
  `${r.principal} ${r.action} on ${r.resource}${r.context && Object.keys(r.context).length ? ` with ${JSON.stringify(r.context)}` : ''}`

async function main() {
  const [templatePath, memberPath, callsPath, expectationsPath] = process.argv.slice(2)
  const template = yaml.load(readFileSync(templatePath, 'utf8'), { schema })
  const member = yaml.load(readFileSync(memberPath, 'utf8'), { schema })
  const expectations = JSON.parse(readFileSync(expectationsPath, 'utf8'))
  const failures = []

  // 1. The suite's own calls.
  // The member template is deployed in every member account: its roles' policies
  // are resolved in the account of the call (the role's account).
  const functionsPolicies = functionPolicies(template, expectations.suite.parameters)
  const memberPolicies = new Map()
  const suitePolicies = (account) => {
    if (!memberPolicies.has(account)) {
      memberPolicies.set(account, memberRolePolicies(member, expectations.suite.member_parameters, account))
    }
    return { ...functionsPolicies, ...memberPolicies.get(account) }
  }
  const lines = readFileSync(callsPath, 'utf8').split('\n').filter(Boolean)
  const unique = new Map()
  for (const line of lines) {
    const call = JSON.parse(line)
    const request = {
      principal: call.principal, action: call.action, resource: call.resource, context: call.context,
      account: call.account,
    }
    unique.set(JSON.stringify(request), request)
  }
  const byPrincipal = {}
  for (const request of unique.values()) {
    const decision = await decide(suitePolicies(request.account ?? ACCOUNT), request)
    byPrincipal[request.principal] = (byPrincipal[request.principal] ?? 0) + 1
    if (decision !== 'Allowed') failures.push(`the suite made a call the template denies (${decision}): ${describe(request)}`)
  }
  if (lines.length === 0) failures.push(`no calls recorded in ${callsPath}: did the tests run?`)
  // The suite must have exercised what the check is for: every action the
  // functions' jobs need, by the principal that needs it.
  const seen = new Set([...unique.values()].map((r) => `${r.principal} ${r.action}`))
  for (const [principal, actions] of Object.entries(expectations.suite.must_see)) {
    for (const action of actions) {
      if (!seen.has(`${principal} ${action}`)) failures.push(`the suite never made ${action} as ${principal}: the check would prove nothing about it`)
    }
  }

  // 2. The probes, under each scenario's parameters (the main one, then any
  // other deployment shape whose policies differ, such as AuditScope=account).
  const scenarios = [expectations.probes, ...(expectations.more_probes ?? [])]
  let denied = 0
  let allowed = 0
  let denyProbes = 0
  let allowProbes = 0
  for (const scenario of scenarios) {
    const probePolicies = {
      ...functionPolicies(template, scenario.parameters),
      ...memberRolePolicies(member, scenario.member_parameters ?? expectations.probes.member_parameters),
    }
    for (const probe of scenario.deny ?? []) {
      denyProbes += 1
      const decision = await decide(probePolicies, probe)
      if (decision === 'Allowed') failures.push(`must be denied but is allowed (${probe.why}): ${describe(probe)}`)
      else denied += 1
    }
    for (const probe of scenario.allow ?? []) {
      allowProbes += 1
      const decision = await decide(probePolicies, probe)
      if (decision !== 'Allowed') failures.push(`must be allowed but is ${decision} (${probe.why}): ${describe(probe)}`)
      else allowed += 1
    }
  }

  const perPrincipal = Object.entries(byPrincipal).map(([p, n]) => `${n} ${p}`).join(', ')
  console.log(
    `least privilege: ${lines.length} recorded calls (${unique.size} distinct requests: ${perPrincipal}) ` +
      `checked against the templates' policies; ${denied} of ${denyProbes} must-deny probes denied, ` +
      `${allowed} of ${allowProbes} must-allow probes allowed (${scenarios.length} deployment shapes)`,
  )
  for (const failure of failures) console.error(`least privilege: FAILED: ${failure}`)
  process.exit(failures.length ? 1 : 0)
}

main().catch((error) => {
  console.error(`least privilege: ${error.stack ?? error}`)
  process.exit(1)
})
