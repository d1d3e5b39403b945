"""Tests of infra/lambda_settings.py, and the agreement check on this repository (tests/run.sh runs this
file: offline, about a second). Each mutation below must be caught, so the check cannot pass vacuously."""

import copy
import os
import sys
import tempfile
import unittest
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lambda_settings as ls  # noqa: E402


class Agreement(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = ls.load_template()
        cls.meta = ls.cargo_metadata()

    def problems(self, mutate_template=None, mutate_meta=None):
        t, m = copy.deepcopy(self.template), copy.deepcopy(self.meta)
        if mutate_template:
            mutate_template(t)
        if mutate_meta:
            mutate_meta(m)
        return "\n".join(ls.agree(t, m))

    def first_function(self, t):
        return next(r for r in t["Resources"].values() if r["Type"] == "AWS::Serverless::Function")

    def package(self, m, name):
        return next(p for p in m["packages"] if p["name"] == name)

    def test_this_repository_agrees(self):
        self.assertEqual(ls.agree(self.template, self.meta), [])

    def test_a_binary_without_a_function_and_a_function_without_a_binary(self):
        def drop_users(t):
            del t["Resources"]["UsersFunction"]
        self.assertIn("binary users (package users) has no function", self.problems(drop_users))

        def rename(t):
            t["Resources"]["UsersFunction"]["Metadata"]["BuildProperties"]["Binary"] = "userz"
        out = self.problems(rename)
        self.assertIn("binary userz is no Lambda binary", out)
        self.assertIn("binary users (package users) has no function", out)

    def test_function_names_are_predictable(self):
        def fixed(t):
            t["Resources"]["UsersFunction"]["Properties"]["FunctionName"] = "users"
        self.assertIn("FunctionName must be !Sub scim-${Stage}-users", self.problems(fixed))

        def unnamed(t):
            del t["Resources"]["UsersFunction"]["Properties"]["FunctionName"]
        self.assertIn("FunctionName must be", self.problems(unnamed))

    def test_settings_and_environment(self):
        def x86(t):
            t["Globals"]["Function"]["Architectures"] = ["x86_64"]
        self.assertIn("Architectures is ['x86_64'], expected ['arm64']", self.problems(x86))

        def no_timeout(t):
            del t["Globals"]["Function"]["Timeout"]
        self.assertIn("Timeout is not set", self.problems(no_timeout))

        def typo(t):
            t["Globals"]["Function"]["Environment"]["Variables"]["SCIM_TABEL"] = "x"
        self.assertIn("SCIM_TABEL is read nowhere in the code", self.problems(typo))

        def local_only(t):
            self.first_function(t)["Properties"]["Environment"] = {"Variables": {"SCIM_LOCAL_ENGINE": "1"}}
        self.assertIn("SCIM_LOCAL_ENGINE is for local runs only", self.problems(local_only))

    def test_cargo_metadata_that_cargo_lambda_would_deploy(self):
        def package_env(m):
            self.package(m, "users")["metadata"] = {"lambda": {"env": {"RUST_LOG": "debug"}}}
        self.assertIn("users: package.metadata.lambda.env]", self.problems(mutate_meta=package_env))

        def bin_deploy(m):
            m["metadata"]["lambda"]["bin"] = {"users": {"deploy": {"memory": 512}}}
        self.assertIn("[workspace.metadata.lambda.bin.users.deploy]", self.problems(mutate_meta=bin_deploy))

        def no_switch(m):
            m["metadata"]["lambda"]["watch"]["env"] = {}
        self.assertIn("must set SCIM_LOCAL_ENGINE", self.problems(mutate_meta=no_switch))

        def no_feature(m):
            del m["metadata"]["lambda"]["watch"]["features"]
        self.assertIn('must set features = ["local-engine"]', self.problems(mutate_meta=no_feature))

        def function_without_feature(m):
            del self.package(m, "groups")["features"]["local-engine"]
        self.assertIn("groups: needs the feature local-engine", self.problems(mutate_meta=function_without_feature))

    def test_default_members_are_the_functions(self):
        def with_local(m):
            m["workspace_default_members"].append(self.package(m, "scim-local")["id"])
        self.assertIn("scim-local is no Lambda function", self.problems(mutate_meta=with_local))

        def without_users(m):
            users = self.package(m, "users")["id"]
            m["workspace_default_members"] = [i for i in m["workspace_default_members"] if i != users]
        self.assertIn("default-members: users is missing", self.problems(mutate_meta=without_users))


class Resolution(unittest.TestCase):
    def test_globals_merge_as_sam_does(self):
        glob = {"Timeout": 10, "Environment": {"Variables": {"A": "1", "B": "2"}}, "Layers": ["g"]}
        own = {"Timeout": 20, "Environment": {"Variables": {"B": "3"}}, "Layers": ["f"]}
        self.assertEqual(ls._merge_globals(glob, own),
                         {"Timeout": 20, "Environment": {"Variables": {"A": "1", "B": "3"}}, "Layers": ["g", "f"]})

    def test_refs_and_subs_resolve_against_the_stack(self):
        template = ls.load_template()
        stack = ls.Stack(template, {"Stage": "qa", "MemorySize": "512"},
                         {"Table": "scim-qa", "EventsTable": "scim-qa-events"}, "eu-west-1")
        users = next(f for f in ls.functions(template) if f.binary == "users")
        s = ls.settings(users, stack)
        self.assertEqual(s["FunctionName"], "scim-qa-users")
        self.assertEqual(s["MemorySize"], 512)
        self.assertEqual(s["Environment"]["SCIM_TABLE"], "scim-qa")
        self.assertEqual(s["Environment"]["SCIM_EVENTS_TABLE"], "scim-qa-events")
        # A parameter the stack does not list takes the template's default.
        self.assertEqual(s["Environment"]["SCIM_TOKEN_SSM_PARAMETER"], "/scim/token")
        self.assertEqual(stack.resolve({"Fn::Sub": "arn:${AWS::Partition}:x:${AWS::Region}:${!Literal}"}),
                         "arn:aws:x:eu-west-1:${Literal}")
        with self.assertRaises(ls.TemplateError):
            stack.resolve({"Fn::If": ["C", "a", "b"]})
        with self.assertRaises(ls.TemplateError):
            stack.resolve({"Ref": "Nothing"})

    def test_conditions_and_no_value(self):
        """The custom domain: SCIM_PUBLIC_URL is the domain's base URL in every function when DomainName
        is set, and absent (not empty) when it is not."""
        template = ls.load_template()
        resources = {"Table": "scim-qa", "EventsTable": "scim-qa-events"}
        plain = ls.Stack(template, {"Stage": "qa"}, resources, "eu-west-1")
        domain = ls.Stack(template, {"Stage": "qa", "DomainName": "scim.vendor.example",
                                     "CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc"},
                          resources, "eu-west-1")
        self.assertFalse(plain.condition("HasDomain"))
        self.assertTrue(domain.condition("HasDomain"))
        for f in ls.functions(template):
            self.assertNotIn("SCIM_PUBLIC_URL", ls.settings(f, plain)["Environment"], f.logical)
            self.assertEqual(ls.settings(f, domain)["Environment"].get("SCIM_PUBLIC_URL"),
                             "https://scim.vendor.example/scim/v2", f.logical)
        self.assertEqual(domain.resolve(["a", {"Fn::If": ["HasDomain", {"Ref": "AWS::NoValue"}, "b"]}]), ["a"])
        self.assertEqual(plain.resolve({"x": {"Fn::If": ["HasDomain", "y", {"Ref": "AWS::NoValue"}]}}), {})
        with self.assertRaises(ls.TemplateError):
            plain.condition("NoSuchCondition")

    def test_elf_machine(self):
        host = ls.ELF_MACHINE["x86_64"] if os.uname().machine == "x86_64" else ls.ELF_MACHINE["arm64"]
        exe = os.path.realpath(sys.executable)
        self.assertEqual(ls.elf_machine(exe), host)
        self.assertIsNone(ls.elf_machine(__file__))
        with tempfile.TemporaryDirectory() as d:
            archive = os.path.join(d, "bootstrap.zip")
            with zipfile.ZipFile(archive, "w") as z, open(exe, "rb") as f:
                z.writestr("bootstrap", f.read(64))
            self.assertEqual(ls.zipped_elf_machine(archive), host)
            with zipfile.ZipFile(archive, "w") as z:
                z.writestr("bootstrap", "#!/bin/sh\n")
            self.assertIsNone(ls.zipped_elf_machine(archive))


if __name__ == "__main__":
    unittest.main(verbosity=1)
