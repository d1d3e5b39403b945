"""infra/deploy-check.sh's work: the `cargo lambda deploy` loop against moto, with no AWS account.

  1. The SAM template is transformed to plain CloudFormation by SAM's own translator (the same transform
     AWS runs) and created as a stack in moto, with non-default parameters (Stage, MemorySize, MultiTenant,
     TokenParameterName), so the roles, table and functions are the ones the stack would make. moto's
     CloudFormation drops a function's Architectures (AWS sets them); each function is re-created with the
     template's, so moto holds what AWS would.
  2. Every function's configuration is then moved away from the template's (memory, timeout, environment)
     as if someone had changed it by hand.
  3. infra/deploy-code.sh runs for every function (cargo lambda deploy --endpoint-url moto).
  4. Each function's configuration is read back and compared with the translated template's, resolved
     with the stack's values: runtime, architecture, handler, memory, timeout, environment, role; its code
     is the zip cargo-lambda built (same SHA-256), whose bootstrap is an ELF for that architecture; no
     function and no role appeared beside the stack's.
  5. A bare `cargo lambda deploy --binary-name users <name>` (the direct path docs/deploy.md shows)
     changes the code only; infra/deploy-code.sh refuses a stack that does not exist, a function the
     template does not declare, and a bootstrap built for another architecture than the function's.

Each function's configuration is printed. Arguments: the moto endpoint URL and the cargo target dir.
"""

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lambda_settings as ls  # noqa: E402

STACK = "scim-deploy-check"
PARAMETERS = {"Stage": "check", "MemorySize": "512", "MultiTenant": "true", "TokenParameterName": "/scim/check-token"}
REGION = "us-east-1"
BUCKET = "scim-deploy-check-code"
SHOWN = ["FunctionName", "Runtime", "Architectures", "Handler", "MemorySize", "Timeout", "Environment", "Role", "CodeSha256", "CodeSize"]


def fail(msg):
    print(f"infra/deploy-check.sh: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def translate(template_path):
    """The template as AWS's SAM transform turns it into CloudFormation (CodeUri replaced by an S3 object:
    the translator wants an S3 location, as `sam package` would give it)."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    with open(template_path) as f:
        sam = yaml_parse(f.read())
    for res in sam["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = f"s3://{BUCKET}/placeholder.zip"

    class NoManagedPolicies:
        def load(self):
            return {}

    return transform(sam, dict(PARAMETERS), NoManagedPolicies())


def placeholder_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "placeholder: replaced by cargo lambda deploy")
    return buf.getvalue()


def comparable(conf):
    """The settings deploy-code.sh promises to set, from a GetFunctionConfiguration answer."""
    return {
        "Runtime": conf.get("Runtime"),
        "Architectures": conf.get("Architectures"),
        "Handler": conf.get("Handler"),
        "MemorySize": conf.get("MemorySize"),
        "Timeout": conf.get("Timeout"),
        "Environment": (conf.get("Environment") or {}).get("Variables") or {},
        "Role": conf.get("Role"),
    }


def main(endpoint, target):
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "deploy-check")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "deploy-check")
    session = boto3.session.Session(region_name=REGION)
    client = lambda name: session.client(name, endpoint_url=endpoint)  # noqa: E731
    cfn, lam, iam, s3 = client("cloudformation"), client("lambda"), client("iam"), client("s3")

    # 1. The stack, as AWS would create it.
    cfn_template = translate(ls.TEMPLATE)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="placeholder.zip", Body=placeholder_zip())
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(cfn_template), Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in PARAMETERS.items()])
    for _ in range(120):
        status = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            break
        time.sleep(0.5)
    if status != "CREATE_COMPLETE":
        fail(f"moto could not create the stack: {status}")
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                 for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"] if r.get("LogicalResourceId")}
    stack = ls.Stack(cfn_template, PARAMETERS, resources, REGION, name=STACK)
    account = session.client("sts", endpoint_url=endpoint).get_caller_identity()["Account"]
    functions = [(logical, res) for logical, res in cfn_template["Resources"].items() if res["Type"] == "AWS::Lambda::Function"]
    if not functions:
        fail("the translated template has no function")
    for logical, res in functions:
        name = resources[logical]
        conf = lam.get_function_configuration(FunctionName=name)
        lam.delete_function(FunctionName=name)
        create = {k: conf[k] for k in ("FunctionName", "Runtime", "Role", "Handler", "MemorySize", "Timeout", "Description")}
        lam.create_function(**create, Environment={"Variables": conf["Environment"]["Variables"]},
                            Architectures=stack.resolve(res["Properties"]["Architectures"]),
                            Code={"ZipFile": placeholder_zip()})

    # 2. Moved away from the template.
    for logical, _ in functions:
        lam.update_function_configuration(FunctionName=resources[logical], MemorySize=128, Timeout=3,
                                          Environment={"Variables": {"CHANGED_BY_HAND": "1"}})
    before_functions = sorted(f["FunctionName"] for f in lam.list_functions()["Functions"])
    before_roles = sorted(r["RoleName"] for r in iam.list_roles()["Roles"])

    # 3. The loop under test.
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION, SCIM_STACK=STACK)
    if subprocess.run([os.path.join(ls.ROOT, "infra", "deploy-code.sh")], env=env).returncode != 0:
        fail("infra/deploy-code.sh failed")

    # 4. Read back and compare.
    problems = []
    print(f"\nEach function after infra/deploy-code.sh (stack {STACK}, parameters {PARAMETERS}):")
    shown = {}
    for logical, res in functions:
        name = resources[logical]
        props = res["Properties"]
        conf = lam.get_function_configuration(FunctionName=name)
        shown[name] = {k: conf.get(k) for k in SHOWN}
        print(json.dumps(shown[name], indent=2, sort_keys=False))
        role = resources[props["Role"]["Fn::GetAtt"][0]]
        want = {
            "Runtime": props["Runtime"],
            "Architectures": stack.resolve(props["Architectures"]),
            "Handler": props["Handler"],
            "MemorySize": int(stack.resolve(props["MemorySize"])),
            "Timeout": int(stack.resolve(props["Timeout"])),
            "Environment": {k: str(v) for k, v in stack.resolve(props["Environment"]["Variables"]).items()},
            "Role": f"arn:aws:iam::{account}:role/{role}",
        }
        got = comparable(conf)
        for key in want:
            if got[key] != want[key]:
                problems.append(f"{name}: {key} is {got[key]!r}, the template says {want[key]!r}")
        binary = cfn_template["Resources"][logical]["Metadata"]["BuildProperties"]["Binary"]
        zip_path = os.path.join(target, "lambda", binary, "bootstrap.zip")
        with open(zip_path, "rb") as f:
            data = f.read()
        if conf["CodeSha256"] != base64.b64encode(hashlib.sha256(data).digest()).decode():
            problems.append(f"{name}: its code is not {zip_path}")
        if ls.zipped_elf_machine(zip_path) != ls.ELF_MACHINE[want["Architectures"][0]]:
            problems.append(f"{name}: the deployed bootstrap is not an ELF for {want['Architectures'][0]}")
    after_functions = sorted(f["FunctionName"] for f in lam.list_functions()["Functions"])
    after_roles = sorted(r["RoleName"] for r in iam.list_roles()["Roles"])
    if after_functions != before_functions:
        problems.append(f"functions changed: {before_functions} -> {after_functions}")
    if after_roles != before_roles:
        problems.append(f"roles changed: {before_roles} -> {after_roles}")

    # 5. The direct path changes the code only; a function outside the stack is refused.
    users = resources.get("UsersFunction")
    if users:
        before = comparable(lam.get_function_configuration(FunctionName=users))
        cmd = ["cargo", "lambda", "deploy", "--binary-name", "users", "--endpoint-url", endpoint, "--region", REGION, users]
        print("+ " + " ".join(cmd), flush=True)
        if subprocess.run(cmd, cwd=ls.ROOT, env=env).returncode != 0:
            problems.append("the bare cargo lambda deploy failed")
        elif comparable(lam.get_function_configuration(FunctionName=users)) != before:
            problems.append(f"a bare cargo lambda deploy changed {users}'s configuration")
    # A build for the wrong architecture: this machine's own Python executable as the users bootstrap.
    wrong = os.path.join(env.get("TMPDIR", "/tmp"), f"scim-deploy-check-target-{os.getpid()}")
    os.makedirs(os.path.join(wrong, "lambda", "users"), exist_ok=True)
    with open(os.path.realpath(sys.executable), "rb") as src, open(os.path.join(wrong, "lambda", "users", "bootstrap"), "wb") as dst:
        dst.write(src.read())
    host_arch = next(a for a, m in ls.ELF_MACHINE.items() if m == ls.elf_machine(os.path.realpath(sys.executable)))
    cases = [(["--stack", "scim-no-such-stack", "users"], "a stack that does not exist", env),
             (["no-such-function"], "a function the template does not declare", env)]
    if host_arch != "arm64":
        cases.append((["users"], f"a bootstrap built for {host_arch}", dict(env, CARGO_TARGET_DIR=wrong)))
    for args, why, case_env in cases:
        refused = subprocess.run([os.path.join(ls.ROOT, "infra", "deploy-code.sh"), *args], env=case_env, capture_output=True, text=True)
        if refused.returncode == 0:
            problems.append(f"infra/deploy-code.sh deployed to {why}")
        else:
            print(f"refused, as it must be ({why}): {refused.stderr.strip()}")
    shutil.rmtree(wrong, ignore_errors=True)
    if sorted(f["FunctionName"] for f in lam.list_functions()["Functions"]) != before_functions:
        problems.append("a function appeared beside the stack's")
    if sorted(r["RoleName"] for r in iam.list_roles()["Roles"]) != before_roles:
        problems.append("a role appeared beside the stack's")

    for p in problems:
        print(f"infra/deploy-check.sh: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"infra/deploy-check.sh: OK: {len(functions)} functions updated in place with the template's settings "
          f"({', '.join(sorted(shown))}); no function or role created")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
