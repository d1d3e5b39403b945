"""infra/check.sh's second lint: a copy of the template whose DomainName and CertificateArn default to
example values, so that the custom domain's resources and outputs are linted with values. cfn-lint 1.x
resolves a Ref to its parameter's default, and its --parameters option does not reach those checks.

Usage: python3 infra/template_with_domain.py TEMPLATE OUT
"""

import re
import sys

VALUES = (
    ("DomainName", "scim.example.com"),
    ("CertificateArn", "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"),
)


def main(template, out):
    with open(template) as f:
        text = f.read()
    for name, value in VALUES:
        text, n = re.subn(r'(\n  %s:\n    Type: String\n    Default: )""' % name, r'\g<1>"%s"' % value, text)
        if n != 1:
            sys.exit(f'infra/template_with_domain.py: no parameter {name} with Default "" in {template}')
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
