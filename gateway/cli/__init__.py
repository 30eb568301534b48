"""``gateway`` — the command line of the data-sharing gateway.

Run ``gateway --help`` or ``gateway <command> --help``. Settings come from ``GATEWAY_*``
environment variables (see README "Settings"), read once per invocation
(:func:`gateway.cli.common.settings_from_env`); options override them where offered. One
module per command group.
"""

from __future__ import annotations

import click

from gateway.cli.audit import audit
from gateway.cli.check import check
from gateway.cli.common import CONTEXT_SETTINGS
from gateway.cli.consumer import catalog, query, token
from gateway.cli.demo import demo, demo_data
from gateway.cli.doctor import doctor
from gateway.cli.keys import keys
from gateway.cli.policy import policy
from gateway.cli.serve import serve
from gateway.cli.systems import systems

__all__ = ["main"]


@click.group(context_settings=CONTEXT_SETTINGS)
def main() -> None:
    """Secure data-sharing gateway 数据共享网关.

    Consumers of one department query another department's shared datasets with SQL;
    the gateway authenticates them, masks and filters what the provider's policy says,
    and writes a tamper-evident audit record of every access.

    \b
    Quick start:
      gateway demo                      serve the embedded demo (SQLite) on 127.0.0.1:8000
      gateway query "SELECT ..." --system rsj-subsidy
      gateway check                     lint the policy directory
    """


for command in (
    serve,
    demo,
    demo_data,
    keys,
    systems,
    token,
    query,
    catalog,
    check,
    doctor,
    audit,
    policy,
):
    main.add_command(command)
