"""Machines' broker credentials (admin; register and revoke also provisioning), audited.

The same operations as ``nx-backend device add|rotate|revoke|kick`` (backend/
provisioning/device_ops.py), with passwords only: certificates stay with the
CLI, next to the CA key. The credential is in the response once and never
stored in clear.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Response, status
from sqlmodel import Session

from backend import crud
from backend.api.deps import PrincipalDep, RequestIdDep, SettingsDep, WriteSessionDep
from backend.api.schemas import (
    DeviceCreate,
    DeviceCredential,
    DeviceKicked,
    DeviceRevoke,
    DeviceRevoked,
)
from backend.config import Settings
from backend.provisioning.agent_config import AgentConfig, render_agent_toml
from backend.provisioning.device_ops import (
    Broker,
    DeviceError,
    DeviceExistsError,
    DeviceNotFoundError,
    commit_audited,
    finish_revocation,
    issue_password,
    kick,
    rotate_password,
    withdraw,
)
from backend.provisioning.identity import IdentityError, validate_device_id

router = APIRouter(prefix="/devices", tags=["devices"])

MachineId = Annotated[str, Path(min_length=2, max_length=63)]
ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "No such machine or credential"},
    409: {"description": "The machine already has a credential"},
    422: {"description": "Not a valid device id or body"},
    503: {"description": "The broker's credentials cannot be changed now"},
}


def _checked(machine_id: str) -> str:
    try:
        return validate_device_id(machine_id)
    except IdentityError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def _refused(exc: DeviceError) -> HTTPException:
    if isinstance(exc, DeviceNotFoundError):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, DeviceExistsError):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))


def _credential(settings: Settings, machine_id: str, password: str) -> DeviceCredential:
    config = AgentConfig(machine_id=machine_id, mqtt_host=settings.mqtt_host,
                         mqtt_port=settings.mqtt_port, mqtt_password=password)
    return DeviceCredential(machine_id=machine_id, mqtt_username=machine_id,
                            mqtt_password=password, agent_config=render_agent_toml(config))


def _fail_closed(session: Session, exc: DeviceError) -> HTTPException:
    session.rollback()  # the machine row and the record go with the failed credential
    return _refused(exc)


@router.post("", response_model=DeviceCredential, status_code=status.HTTP_201_CREATED,
             responses=ERRORS)
def add_device(body: DeviceCreate, session: WriteSessionDep, settings: SettingsDep,
               principal: PrincipalDep, request_id: RequestIdDep,
               response: Response) -> DeviceCredential:
    """Register a machine and give it a broker password (shown in this response only)."""
    machine_id = _checked(body.machine_id)
    crud.register_machine(session=session, machine_id=machine_id, name=body.name,
                          lat=body.lat, lon=body.lon, site=body.site, area=body.area,
                          actor=principal.name, request_id=request_id, commit=False)
    broker = Broker.from_settings(settings)
    try:
        password = issue_password(broker, machine_id)
    except DeviceError as exc:
        raise _fail_closed(session, exc) from None
    commit_audited(session, actor=principal.name, action="device.add", machine_id=machine_id,
                   after={"credential": "password", "plugin": broker.uses_plugin,
                          "registered": True}, request_id=request_id)
    response.headers["Cache-Control"] = "no-store"
    return _credential(settings, machine_id, password)


@router.post("/{machine_id}/rotate", response_model=DeviceCredential, responses=ERRORS)
def rotate_device(machine_id: MachineId, session: WriteSessionDep, settings: SettingsDep,
                  principal: PrincipalDep, request_id: RequestIdDep,
                  response: Response) -> DeviceCredential:
    """Replace a machine's broker password (password-file brokers; shown once)."""
    machine_id = _checked(machine_id)
    try:
        password = rotate_password(Broker.from_settings(settings), machine_id)
    except DeviceError as exc:
        raise _fail_closed(session, exc) from None
    commit_audited(session, actor=principal.name, action="device.rotate", machine_id=machine_id,
                   after={"credential": "password"}, request_id=request_id)
    response.headers["Cache-Control"] = "no-store"
    return _credential(settings, machine_id, password)


@router.post("/{machine_id}/revoke", response_model=DeviceRevoked, responses=ERRORS)
def revoke_device(machine_id: MachineId, session: WriteSessionDep, settings: SettingsDep,
                  principal: PrincipalDep, request_id: RequestIdDep,
                  body: Annotated[DeviceRevoke | None, Body()] = None) -> DeviceRevoked:
    """Withdraw a machine's password and certificates; optionally deactivate it."""
    machine_id = _checked(machine_id)
    options = body or DeviceRevoke()
    broker = Broker.from_settings(settings)
    try:
        withdrawn = withdraw(broker, machine_id, ca_dir=settings.broker_ca_dir,
                             crl_file=settings.broker_crl_file)
    except DeviceError as exc:
        raise _fail_closed(session, exc) from None
    deactivated = False
    if options.deactivate:
        try:
            crud.deactivate_machine(session=session, machine_id=machine_id,
                                    actor=principal.name, request_id=request_id, commit=False)
            deactivated = True
        except crud.NotFoundError:
            pass
    commit_audited(session, actor=principal.name, action="device.revoke", machine_id=machine_id,
                   after=withdrawn.audit_values(), request_id=request_id)
    try:
        finish_revocation(broker, machine_id, withdrawn, kick_session=options.kick)
    except DeviceError as exc:
        # Revoked and recorded; only the broker's reload or the kick failed.
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    return DeviceRevoked(machine_id=machine_id, deactivated=deactivated,
                         session_ended=options.kick and not withdrawn.by_plugin,
                         plugin_client_removed=withdrawn.by_plugin,
                         password_removed=withdrawn.password_removed,
                         certificates_revoked=withdrawn.serials)


@router.post("/{machine_id}/kick", response_model=DeviceKicked, responses=ERRORS)
def kick_device(machine_id: MachineId, session: WriteSessionDep, settings: SettingsDep,
                principal: PrincipalDep, request_id: RequestIdDep) -> DeviceKicked:
    """End a machine's live connection and stored session (it may reconnect if still valid)."""
    machine_id = _checked(machine_id)
    try:
        kick(settings, machine_id)
    except DeviceError as exc:
        raise _fail_closed(session, exc) from None
    commit_audited(session, actor=principal.name, action="device.kick", machine_id=machine_id,
                   request_id=request_id)
    return DeviceKicked(machine_id=machine_id, session_ended=True)
