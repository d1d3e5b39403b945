"""infra/deploy-code.sh's work: push the code built by `cargo lambda build --release --arm64` to the
functions of a deployed stack with `cargo lambda deploy`, with the settings infra/template.yaml declares.

For each function (every function of the template, or the binaries named on the command line):
  1. its physical name and its role come from the stack's resources (what SAM created): `cargo lambda
     deploy` gets exactly that name and `--iam-role` that role, and a function the stack does not hold is
     refused, so nothing is ever created beside the stack (no stray function, no stray role);
  2. memory, timeout, runtime and environment are the template's, resolved with the stack's parameter
     values and resource names (infra/lambda_settings.py): `cargo lambda deploy` changes a setting only
     where the function differs, and replaces the environment as a whole (so it is the template's again);
  3. the built bootstrap must be an ELF for the template's architecture (UpdateFunctionCode keeps the
     function's architecture: an x86_64 build on an arm64 function would fail at its first start).

AWS access: the usual AWS CLI/SDK environment (AWS_PROFILE, AWS_REGION, credentials). AWS_ENDPOINT_URL
sends every call elsewhere (moto, for infra/deploy-check.sh). Tokens and keys are never printed.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lambda_settings as ls  # noqa: E402

SAMCONFIG = os.path.join(ls.ROOT, "infra", "samconfig.toml")
# What an environment file line may hold unquoted (cargo-lambda reads --env-file as KEY=VALUE lines).
# Empty values too: the template sets some to "" (an optional setting left off, e.g. OAuth's keys parameter).
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_./:@%+=,*-]*$")


class DeployError(Exception):
    pass


def default_stack_name():
    """$SCIM_STACK, else the stack_name `sam deploy --guided` saved in infra/samconfig.toml."""
    if os.environ.get("SCIM_STACK"):
        return os.environ["SCIM_STACK"]
    with open(SAMCONFIG) as f:
        m = re.search(r'^\s*stack_name\s*=\s*"([^"]+)"', f.read(), re.M)
    if not m:
        raise DeployError("no stack name: pass --stack NAME or set SCIM_STACK")
    return m.group(1)


def read_stack(session, name, template):
    cfn = session.client("cloudformation")
    try:
        desc = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except cfn.exceptions.ClientError as e:
        raise DeployError(f"stack {name}: {e} (create it first with sam deploy; docs/deploy.md)") from None
    status = desc["StackStatus"]
    # UPDATE_ROLLBACK_COMPLETE is usable (the previous template's resources); a failed creation is not.
    if not status.endswith("_COMPLETE") or status in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE"):
        raise DeployError(f"stack {name} is {status}: wait for it, or fix it with sam deploy")
    params = {p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", "")) for p in desc.get("Parameters", [])}
    resources = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
        for r in page["StackResourceSummaries"]:
            if r.get("LogicalResourceId") and r.get("PhysicalResourceId"):
                resources[r["LogicalResourceId"]] = r["PhysicalResourceId"]
    arn = desc["StackId"].split(":")
    return ls.Stack(template, params, resources, region=arn[3], account=arn[4], partition=arn[1], name=name)


def target_dir():
    return ls.cargo_metadata()["target_directory"]


def check_binary(function, want_arch):
    """The build cargo-lambda will deploy (target/lambda/<binary>/bootstrap, else the bootstrap inside
    bootstrap.zip: `--output-format zip`) must be an ELF for the function's architecture."""
    directory = os.path.join(target_dir(), "lambda", function.binary)
    binary, archive = os.path.join(directory, "bootstrap"), os.path.join(directory, "bootstrap.zip")
    if os.path.isfile(binary):
        path, machine = binary, ls.elf_machine(binary)
    elif os.path.isfile(archive):
        path, machine = archive, ls.zipped_elf_machine(archive)
    else:
        raise DeployError(f"{binary} is missing: build first with `cargo lambda build --release --arm64`")
    if machine != ls.ELF_MACHINE.get(want_arch):
        found = next((a for a, m in ls.ELF_MACHINE.items() if m == machine), f"machine {machine}")
        raise DeployError(f"{path} is built for {found}, the function runs on {want_arch}: "
                          "build with `cargo lambda build --release --arm64`")


def env_file(directory, variables):
    lines = []
    for k, v in sorted(variables.items()):
        if not SAFE_VALUE.match(v):
            raise DeployError(f"environment variable {k}: its value has characters an env file cannot carry "
                              "unquoted; extend infra/deploy_code.py")
        lines.append(f"{k}={v}\n")
    path = os.path.join(directory, "env")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.writelines(lines)
    return path


def plan(session, stack, selected):
    """(function, settings, role ARN) of every selected function, checked against the stack."""
    lam = session.client("lambda")
    chosen = [f for f in ls.functions(stack.template) if not selected or f.binary in selected]
    unknown = set(selected) - {f.binary for f in chosen}
    if unknown:
        raise DeployError(f"no function in infra/template.yaml runs {', '.join(sorted(unknown))} "
                          f"(functions: {', '.join(f.binary for f in ls.functions(stack.template))})")
    out = []
    for f in chosen:
        s = ls.settings(f, stack)
        physical = stack.resources.get(f.logical)
        if physical is None:
            raise DeployError(f"stack {stack.pseudo['AWS::StackName']} has no {f.logical}: deploy the template "
                              "first (sam build && sam deploy); cargo lambda deploy only updates its functions")
        if physical != s["FunctionName"]:
            raise DeployError(f"{f.logical} is {physical} in the stack but {s['FunctionName']} in the template: "
                              "run sam deploy first")
        try:
            current = lam.get_function_configuration(FunctionName=physical)
        except lam.exceptions.ResourceNotFoundException:
            raise DeployError(f"function {physical} of the stack does not exist: run sam deploy") from None
        # The role SAM made for the function (<Logical>Role), unless the template names one.
        role_name = stack.resources.get(f.logical + "Role")
        if "Role" in f.props:
            role_arn = stack.resolve(f.props["Role"])
        elif role_name and current["Role"].endswith(":role/" + role_name):
            role_arn = current["Role"]
        else:
            raise DeployError(f"{physical} runs as {current['Role']}, not the stack's {f.logical}Role: run sam deploy")
        if current.get("Architectures", ["x86_64"]) != s["Architectures"]:
            raise DeployError(f"{physical} runs on {current.get('Architectures')}, the template says "
                              f"{s['Architectures']}: run sam deploy")
        out.append((f, s, role_arn))
    return out


def deploy(function, s, role_arn, endpoint, region, dry_run):
    with tempfile.TemporaryDirectory(prefix="scim-deploy-") as tmp:
        cmd = ["cargo", "lambda", "deploy",
               "--binary-name", function.binary,
               "--iam-role", role_arn,
               "--runtime", s["Runtime"],
               "--memory", str(s["MemorySize"]),
               "--timeout", str(s["Timeout"]),
               "--env-file", env_file(tmp, s["Environment"]),
               "--region", region]
        if endpoint:
            cmd += ["--endpoint-url", endpoint]
        cmd.append(s["FunctionName"])
        # The command line holds names and numbers only (the environment is in the file, and holds names
        # of secrets, never secrets): safe to show.
        print("+ " + " ".join(cmd), flush=True)
        if not dry_run:
            done = subprocess.run(cmd, cwd=ls.ROOT)
            if done.returncode != 0:
                raise DeployError(f"cargo lambda deploy {s['FunctionName']} failed ({done.returncode})")


def main(argv):
    ap = argparse.ArgumentParser(prog="infra/deploy-code.sh", description=__doc__.split("\n\n")[0])
    ap.add_argument("--stack", help="stack name (default: $SCIM_STACK, else infra/samconfig.toml's stack_name)")
    ap.add_argument("--dry-run", action="store_true", help="check and print the cargo lambda deploy commands only")
    ap.add_argument("functions", nargs="*", metavar="FUNCTION", help="binary names (default: every function)")
    args = ap.parse_args(argv[1:])
    try:
        session = boto3.session.Session()
        if not session.region_name:
            raise DeployError("no AWS region: set AWS_REGION (or a profile with a region)")
        template = ls.load_template()
        stack = read_stack(session, args.stack or default_stack_name(), template)
        steps = plan(session, stack, args.functions)
        for f, s, _ in steps:
            check_binary(f, s["Architectures"][0])
        for f, s, role in steps:
            deploy(f, s, role, os.environ.get("AWS_ENDPOINT_URL"), session.region_name, args.dry_run)
    except (DeployError, ls.TemplateError) as e:
        print(f"infra/deploy-code.sh: {e}", file=sys.stderr)
        return 1
    names = ", ".join(s["FunctionName"] for _, s, _ in steps)
    print(f"infra/deploy-code.sh: {'checked' if args.dry_run else 'deployed'} {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
