"""The Lambda functions' settings as infra/template.yaml declares them: the one place they are kept.

Runtime, architecture, handler, memory, timeout and environment of every function live in the template
only (its Globals and each function's Properties). Everything that deploys or checks code reads them
from here instead of keeping a copy:

  infra/deploy-code.sh     the flags `cargo lambda deploy` gets, resolved against the deployed stack
  infra/deploy-check.sh    what the functions must hold after such a deploy (against moto)
  python3 infra/lambda_settings.py agree
                           (tests/run.sh; cheap, offline) the workspace's Lambda packages, their Cargo
                           metadata and the template agree: see `agree` below
  python3 infra/lambda_settings.py binaries
                           the functions' binary names, one per line (infra/build-lambda.sh)

Needs PyYAML (in every virtualenv the scripts use: .venv, .venv-lambda, .venv-infra).
"""

import json
import os
import re
import subprocess
import sys
import zipfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "infra", "template.yaml")

# Variables only a local run may set; a deployed function must never carry them.
LOCAL_ONLY = {"SCIM_LOCAL_ENGINE", "SCIM_DATA_DIR", "SCIM_BEARER_TOKEN", "SCIM_DYNAMODB_ENDPOINT"}
# The switch the README's `cargo lambda watch` line relies on (shared/src/local_engine.rs).
WATCH_SWITCH = ("SCIM_LOCAL_ENGINE", "1")
# The feature that compiles the code behind the switch (scim-core's `local_engine`), passed by
# `cargo lambda watch` to its `cargo run`; every HTTP function's package forwards it to scim-core.
WATCH_FEATURE = "local-engine"
# The settings every function carries, and the values this project deploys with.
EXPECTED = {"Runtime": "provided.al2023", "Architectures": ["arm64"], "Handler": "bootstrap"}
# ELF e_machine of each Lambda architecture (a bootstrap built for another one cannot start).
ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}


class TemplateError(Exception):
    pass


# --------------------------------------------------------------------------------------------------------
# Reading the template: CloudFormation's short tags (!Ref, !Sub, ...) become their long forms.
# --------------------------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    pass


def _tag(name):
    key = "Ref" if name == "Ref" else "Fn::" + name

    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if name == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _name in ["Ref", "Sub", "GetAtt", "If", "Not", "Equals", "And", "Or", "Join", "Select", "Split",
              "FindInMap", "Base64", "Cidr", "ImportValue", "GetAZs", "Condition", "Length", "ToJsonString"]:
    _Loader.add_constructor("!" + _name, _tag(_name))


def load_template(path=TEMPLATE):
    with open(path) as f:
        return yaml.load(f, Loader=_Loader)


def _merge_globals(glob, own):
    """SAM's Globals rule: maps merge key by key, lists take the global entries first, scalars are
    replaced by the function's own value."""
    if isinstance(glob, dict) and isinstance(own, dict):
        out = dict(glob)
        for k, v in own.items():
            out[k] = _merge_globals(glob[k], v) if k in glob else v
        return out
    if isinstance(glob, list) and isinstance(own, list):
        return glob + own
    return own


class Function:
    """One AWS::Serverless::Function: its logical id, binary and effective (Globals-merged) properties."""

    def __init__(self, logical, binary, props):
        self.logical = logical
        self.binary = binary
        self.props = props

    def __repr__(self):
        return f"Function({self.logical}, {self.binary})"


def functions(template=None):
    """The template's functions in template order, with Globals.Function merged into each."""
    template = template if template is not None else load_template()
    glob = (template.get("Globals") or {}).get("Function") or {}
    out = []
    for logical, res in (template.get("Resources") or {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        meta = res.get("Metadata") or {}
        binary = (meta.get("BuildProperties") or {}).get("Binary")
        out.append(Function(logical, binary, _merge_globals(glob, res.get("Properties") or {})))
    return out


# --------------------------------------------------------------------------------------------------------
# Resolving the intrinsic functions the function settings use, against a stack's values.
# --------------------------------------------------------------------------------------------------------
# What `!Ref AWS::NoValue` resolves to: the property (or map entry, or list item) holding it is dropped.
NO_VALUE = object()


class Stack:
    """What CloudFormation knows about a deployed stack: parameter values, each resource's physical id,
    and the pseudo parameters."""

    def __init__(self, template, parameters, resources, region, account="123456789012", partition="aws",
                 name="stack"):
        self.template = template
        self.parameters = dict(parameters)
        self.resources = dict(resources)
        self.pseudo = {"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": partition,
                       "AWS::StackName": name, "AWS::URLSuffix": "amazonaws.com"}

    def ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        declared = (self.template.get("Parameters") or {}).get(name)
        if declared is not None:
            if name in self.parameters:
                return self.parameters[name]
            if "Default" in declared:
                return str(declared["Default"])
            raise TemplateError(f"parameter {name} has no value and no default")
        if name in self.resources:
            # Ref of a function, table, log group or role is its name: the physical id.
            return self.resources[name]
        raise TemplateError(f"!Ref {name}: neither a parameter nor a resource of the stack")

    def condition(self, name):
        """The value of the template's condition `name` with the stack's parameters."""
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"condition {name} is not declared")
        return self._truth(conditions[name])

    def _truth(self, value):
        if isinstance(value, bool):
            return value
        if isinstance(value, dict) and len(value) == 1:
            (key, arg), = value.items()
            if key == "Fn::Equals":
                a, b = (self.resolve(v) for v in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self._truth(arg[0])
            if key == "Fn::And":
                return all(self._truth(v) for v in arg)
            if key == "Fn::Or":
                return any(self._truth(v) for v in arg)
            if key == "Condition":
                return self.condition(arg)
        raise TemplateError(f"{value!r} is no condition infra/lambda_settings.py evaluates")

    def resolve(self, value):
        """`value` with every Ref, Sub and If replaced (an `AWS::NoValue` drops its map entry or list
        item); any other intrinsic is refused (extend this function if the function settings ever need
        one)."""
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.resolve(then if self.condition(name) else otherwise)
            if key == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

                def sub(m):
                    inner = m.group(1)
                    if inner.startswith("!"):
                        return "${" + inner[1:] + "}"
                    if inner in names:
                        return str(names[inner])
                    if "." in inner:
                        raise TemplateError(f"!Sub ${{{inner}}}: attributes are not resolved here")
                    return str(self.ref(inner))

                return re.sub(r"\$\{([^}]+)\}", sub, text)
            if key == "Fn::GetAtt":
                res, attr = arg.split(".", 1) if isinstance(arg, str) else arg
                declared = (self.template.get("Resources") or {}).get(res) or {}
                # An EventBridge bus's name: the name the template gives it (what !Ref answers, too).
                if declared.get("Type") == "AWS::Events::EventBus" and attr == "Name":
                    name = (declared.get("Properties") or {}).get("Name")
                    return self.resolve(name) if name is not None else self.ref(res)
                raise TemplateError(f"!GetAtt {res}.{attr} is not resolved by infra/lambda_settings.py")
            if key.startswith("Fn::") or key == "Condition":
                raise TemplateError(f"{key} is not resolved by infra/lambda_settings.py")
        resolved = ((k, self.resolve(v)) for k, v in value.items())
        return {k: v for k, v in resolved if v is not NO_VALUE}


def settings(function, stack):
    """The deployed settings of `function` in `stack`, resolved: what `cargo lambda deploy` must set and
    GetFunctionConfiguration must answer."""
    p = function.props
    env = (p.get("Environment") or {}).get("Variables") or {}
    return {
        "FunctionName": stack.resolve(p.get("FunctionName")),
        "Runtime": stack.resolve(p.get("Runtime")),
        "Architectures": stack.resolve(p.get("Architectures") or ["x86_64"]),
        "Handler": stack.resolve(p.get("Handler")),
        "MemorySize": int(stack.resolve(p.get("MemorySize", 128))),
        "Timeout": int(stack.resolve(p.get("Timeout", 3))),
        "Environment": {k: str(v) for k, v in stack.resolve(env).items()},
    }


def _machine(head):
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def elf_machine(path):
    """The ELF e_machine of the file at `path` (None when it is not an ELF file)."""
    with open(path, "rb") as f:
        return _machine(f.read(20))


def zipped_elf_machine(path, member="bootstrap"):
    """The ELF e_machine of `member` inside the zip file at `path` (None when it is not an ELF file)."""
    with zipfile.ZipFile(path) as z, z.open(member) as f:
        return _machine(f.read(20))


def cargo_metadata():
    out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


# --------------------------------------------------------------------------------------------------------
# The agreement check (tests/run.sh).
# --------------------------------------------------------------------------------------------------------
def _lambda_binaries(meta):
    """Binary name -> package name of every Lambda function in the workspace: the binaries of the
    packages under functions/ that depend on the Lambda runtime."""
    out = {}
    for pkg in meta["packages"]:
        rel = os.path.relpath(pkg["manifest_path"], ROOT)
        deps = {d["name"] for d in pkg["dependencies"] if d.get("kind") is None}
        if not rel.startswith("functions" + os.sep) or not deps & {"lambda_http", "lambda_runtime"}:
            continue
        for target in pkg["targets"]:
            if "bin" in target["kind"]:
                out[target["name"]] = pkg["name"]
    return out


def _names_in_code():
    """Every string literal that looks like an environment variable name in the Rust sources."""
    names = set()
    for top in ("shared", "functions"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".rs"):
                    with open(os.path.join(dirpath, f)) as src:
                        names.update(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', src.read()))
    return names


def _lambda_metadata_problems(where, lambda_meta):
    problems = []
    if not isinstance(lambda_meta, dict):
        return problems
    sections = [(where, lambda_meta)] + [(f"{where}.bin.{b}", m) for b, m in (lambda_meta.get("bin") or {}).items()]
    for place, section in sections:
        for key in ("env", "deploy"):
            if key in section:
                problems.append(
                    f"[{place}.{key}]: cargo-lambda adds it to every `cargo lambda deploy`, so the deployed "
                    "settings would no longer be the template's; put deploy settings in infra/template.yaml "
                    "and local-only variables under `watch`")
    return problems


def agree(template=None, meta=None):
    """Every problem found (empty when the workspace, its Cargo metadata and the template agree):
    - each Lambda binary of the workspace is exactly one template function and back (BuildMethod
      rust-cargolambda, BuildProperties.Binary), so `cargo lambda build`/`deploy` and SAM ship the same
      set;
    - each function's FunctionName is `scim-${Stage}-<binary>`: predictable, so `cargo lambda deploy
      --binary-name <binary> scim-<Stage>-<binary>` reaches exactly the function API Gateway routes to;
    - each function's effective runtime, architecture and handler are the project's, memory and timeout
      are set, and every environment variable is one the code reads and none is local-only;
    - no Cargo.toml holds `[*.metadata.lambda.env]` or `[*.metadata.lambda.deploy]` (cargo-lambda would
      add them to every deploy), and the workspace's watch settings carry the switch the README's
      `cargo lambda watch` line relies on, with variables the code reads, and the feature the switch
      needs, which every HTTP function's package has;
    - the workspace's default members (what `cargo lambda build` and SAM's `--bin <function>` build)
      include every Lambda package and no other binary (scim-local, the tests): Cargo unifies features
      over them, so scim-local's (scim-core's `local-engine` among them) would reach the functions."""
    template = template if template is not None else load_template()
    meta = meta if meta is not None else cargo_metadata()
    problems = []
    binaries = _lambda_binaries(meta)
    funcs = functions(template)
    resources = template.get("Resources") or {}
    in_template = {}
    for f in funcs:
        build = (resources[f.logical].get("Metadata") or {}).get("BuildMethod")
        if build != "rust-cargolambda" or not f.binary:
            problems.append(f"{f.logical}: needs Metadata BuildMethod rust-cargolambda and BuildProperties.Binary")
            continue
        if f.binary in in_template:
            problems.append(f"{f.logical}: binary {f.binary} is already {in_template[f.binary]}")
        in_template[f.binary] = f.logical
    for b in sorted(set(binaries) - set(in_template)):
        problems.append(f"binary {b} (package {binaries[b]}) has no function in infra/template.yaml")
    for b in sorted(set(in_template) - set(binaries)):
        problems.append(f"{in_template[b]}: binary {b} is no Lambda binary of the workspace (functions/*)")

    code_names = _names_in_code()
    for f in funcs:
        if not f.binary:
            continue
        stages = []
        for stage in ("prod", "dev"):
            stack = Stack(template, {"Stage": stage}, {r: f"<{r}>" for r in resources}, "us-east-1")
            try:
                stages.append(settings(f, stack))
            except TemplateError as e:
                problems.append(f"{f.logical}: {e}")
        if len(stages) < 2:
            continue
        for stage, s in zip(("prod", "dev"), stages):
            if s["FunctionName"] != f"scim-{stage}-{f.binary}":
                problems.append(f"{f.logical}: FunctionName must be !Sub scim-${{Stage}}-{f.binary} "
                                f"(is {s['FunctionName']!r} for Stage={stage})")
        s = stages[0]
        for key, want in EXPECTED.items():
            if s[key] != want:
                problems.append(f"{f.logical}: {key} is {s[key]!r}, expected {want!r}")
        for key in ("MemorySize", "Timeout"):
            if key not in f.props:
                problems.append(f"{f.logical}: {key} is not set (Globals or Properties)")
        for name in sorted(s["Environment"]):
            if name in LOCAL_ONLY:
                problems.append(f"{f.logical}: {name} is for local runs only and must not be deployed")
            elif name not in code_names and name != "RUST_LOG":
                problems.append(f"{f.logical}: environment variable {name} is read nowhere in the code")

    problems += _lambda_metadata_problems("workspace.metadata.lambda", (meta.get("metadata") or {}).get("lambda"))
    for pkg in meta["packages"]:
        problems += _lambda_metadata_problems(f"{pkg['name']}: package.metadata.lambda", (pkg.get("metadata") or {}).get("lambda"))
    watch = ((meta.get("metadata") or {}).get("lambda") or {}).get("watch") or {}
    watch_env = watch.get("env") or watch.get("env_var") or {}
    if isinstance(watch_env, list):
        watch_env = dict(v.split("=", 1) for v in watch_env)
    if watch_env.get(WATCH_SWITCH[0]) != WATCH_SWITCH[1]:
        problems.append(f"[workspace.metadata.lambda.watch.env] must set {WATCH_SWITCH[0]} = \"{WATCH_SWITCH[1]}\" "
                        "(the handlers under `cargo lambda watch` then use the running scim-local)")
    for name in sorted(watch_env):
        if name not in code_names:
            problems.append(f"[workspace.metadata.lambda.watch.env]: {name} is read nowhere in the code")
    features = watch.get("features") or []
    if isinstance(features, str):
        features = features.replace(",", " ").split()
    if WATCH_FEATURE not in features:
        problems.append(f"[workspace.metadata.lambda.watch] must set features = [\"{WATCH_FEATURE}\"] "
                        f"(without it the handlers have no code behind {WATCH_SWITCH[0]})")
    by_id = {pkg["id"]: pkg for pkg in meta["packages"]}
    lambda_packages = set(binaries.values())
    # The HTTP handlers (`bootstrap::lambda_state`) are what `cargo lambda watch` serves; the events
    # function reads no scim-local.
    for pkg in meta["packages"]:
        http_handler = any(d["name"] == "lambda_http" and d.get("kind") is None for d in pkg["dependencies"])
        if pkg["name"] in lambda_packages and http_handler and WATCH_FEATURE not in (pkg.get("features") or {}):
            problems.append(f"{pkg['name']}: needs the feature {WATCH_FEATURE} = [\"scim-core/{WATCH_FEATURE}\"] "
                            "(`cargo lambda watch` turns it on)")
    default_members = meta.get("workspace_default_members")
    if default_members is not None:
        members = [by_id[i] for i in default_members if i in by_id]
        for name in sorted(lambda_packages - {p["name"] for p in members}):
            problems.append(f"workspace default-members: {name} is missing (`cargo lambda build` builds them)")
        for pkg in members:
            if pkg["name"] not in lambda_packages and any("bin" in t["kind"] for t in pkg["targets"]):
                problems.append(f"workspace default-members: {pkg['name']} is no Lambda function; its features "
                                "would be unified into the functions' builds")
    return problems


def main(argv):
    if argv[1:] == ["agree"]:
        problems = agree()
        for p in problems:
            print(f"infra/lambda_settings.py: {p}", file=sys.stderr)
        if problems:
            return 1
        names = ", ".join(f.binary for f in functions())
        print(f"infra/lambda_settings.py: the template, the workspace's Lambda binaries ({names}) and their Cargo metadata agree")
        return 0
    if argv[1:] == ["binaries"]:
        for f in functions():
            print(f.binary)
        return 0
    print("usage: lambda_settings.py agree|binaries", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
