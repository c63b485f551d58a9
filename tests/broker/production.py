"""Run broker_config/mosquitto.conf for real, rewritten to temp paths and free ports."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from backend.provisioning import ca_store
from simulators.broker import BROKER_CONFIG_DIR, MosquittoBroker, free_port

PRODUCTION_CONF = BROKER_CONFIG_DIR / "mosquitto.conf"
ETC = "/etc/mosquitto/naloxnet/"


@dataclass
class ProductionBroker:
    """The running broker and what a test needs to reach each listener."""

    broker: MosquittoBroker
    machine_port: int
    service_tls_port: int
    ca_dir: Path
    clients_dir: Path
    crl_file: Path

    @property
    def loopback_port(self) -> int:
        return self.broker.port


def render_template(text: str, tls_dir: Path, machine_port: int, service_port: int,
                    crl_file: Path) -> str:
    """Turn the production file into a MosquittoBroker template for a temp directory."""
    text = text.replace("$", "$$")  # keep $SYS in comments literal for string.Template
    replacements = {
        # The broker's CRL is a copy, as on a broker host apart from the CA.
        f"crlfile {ETC}crl.pem": f"crlfile {crl_file}",
        # The plugin's path differs between distributions; its file is the broker's own.
        "plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so": "plugin ${plugin}",
        "plugin_opt_config_file /var/lib/mosquitto/dynamic-security.json":
            "plugin_opt_config_file ${dynsec_file}",
        ETC: f"{tls_dir}/",
        "persistence_location /var/lib/mosquitto/": "persistence_location ${data_dir}/",
        "log_dest file /var/log/mosquitto/mosquitto.log": "log_dest file ${data_dir}/mosquitto.log",
        "pid_file /run/mosquitto/mosquitto.pid": "pid_file ${data_dir}/mosquitto.pid",
        "listener 1883 127.0.0.1": "listener ${port} 127.0.0.1",
        "listener 8883\n": f"listener {machine_port} 127.0.0.1\n",
        "listener 8884\n": f"listener {service_port} 127.0.0.1\n",
    }
    for old, new in replacements.items():
        if old not in text:
            raise ValueError(f"production config no longer contains {old!r}; update the test")
        text = text.replace(old, new)
    return text


def start_production_broker(users: dict[str, str], extra_config: str = "") -> ProductionBroker:
    """Create a CA and server certificate, render the config and start the broker."""
    root = Path(tempfile.mkdtemp(prefix="nx-prod-broker-"))
    os.chmod(root, 0o755)  # noqa: S103 - the broker's user must traverse it
    ca_dir = root / "ca"
    ca_store.init_ca(ca_dir)
    os.chmod(ca_dir, 0o755)  # noqa: S103 - ca.key itself stays 0600
    ca_store.issue_server(ca_dir, ["127.0.0.1", "localhost"])
    crl_file = root / "broker-crl.pem"
    ca_store.export_crl(ca_dir, crl_file)
    machine_port, service_port = free_port(), free_port()
    template = root / "mosquitto.conf.template"
    template.write_text(
        render_template(PRODUCTION_CONF.read_text(encoding="utf-8"), ca_dir,
                        machine_port, service_port, crl_file),
        encoding="utf-8",
    )
    broker = MosquittoBroker(users, workdir=root / "broker", template=template,
                             extra_config=extra_config)
    broker.start()
    return ProductionBroker(broker, machine_port, service_port, ca_dir, root / "clients",
                            crl_file)
