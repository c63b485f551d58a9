"""``nx-backend device ca ...``: the deployment's certificate authority for TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backend.provisioning import ca_store
from backend.provisioning.cli_common import fail as _fail
from backend.provisioning.cli_common import say as _say

ca_app = typer.Typer(help="The deployment's certificate authority for TLS.",
                     no_args_is_help=True)

DEFAULT_CA_DIR = Path("var/ca")
CaDir = Annotated[Path, typer.Option(envvar="NX_BROKER_CA_DIR",
                                     help="Directory of the deployment CA.")]


@ca_app.command("init")
def ca_init(
    ca_dir: CaDir = DEFAULT_CA_DIR,
    common_name: Annotated[str, typer.Option(help="The CA's name.")] = "NaloxNet device CA",
) -> None:
    """Create the deployment CA (key, certificate, empty CRL)."""
    try:
        path = ca_store.init_ca(ca_dir, common_name)
    except ca_store.CaError as exc:
        raise _fail(str(exc)) from exc
    _say(f"CA created: {path} (keep {ca_dir / 'ca.key'} secret and backed up)")


@ca_app.command("server-cert")
def ca_server_cert(
    host: Annotated[list[str], typer.Option(help="Broker DNS name or IP; repeat for more.")],
    ca_dir: CaDir = DEFAULT_CA_DIR,
) -> None:
    """Issue the broker's TLS certificate for the given host names."""
    try:
        cert_file, key_file = ca_store.issue_server(ca_dir, host)
    except (ca_store.CaError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    _say(f"server certificate {cert_file} and key {key_file}: point the broker's "
         "certfile/keyfile at them; the key must be readable by the broker's user")
