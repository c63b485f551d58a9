"""Sign in with an API token (checked with ``GET /api/v1/auth/me``) or with single sign-on."""

from __future__ import annotations

import streamlit as st

from console import session
from console.client import ApiError, UnauthorizedError

st.title("Sign in")
notice = session.take_notice()
if notice:
    st.warning(notice)

st.write(
    "Paste the API token you were given (`nx-backend token create` prints one). "
    "It stays in this browser session's memory only and is forgotten at sign-out."
)
_TOKEN_KEY = "sign_in_token"  # noqa: S105 - a widget key, not a secret
_ERROR_KEY = "sign_in_error"


def _attempt() -> None:
    """Try the typed token, then blank the field so the token does not linger in widget state."""
    token = str(st.session_state.get(_TOKEN_KEY, "")).strip()
    st.session_state[_TOKEN_KEY] = ""
    if not token:
        st.session_state[_ERROR_KEY] = "Enter a token."
        return
    try:
        session.sign_in(token, session.VIA_TOKEN)
    except UnauthorizedError:
        st.session_state[_ERROR_KEY] = (
            "That token was not accepted: it is unknown, expired or revoked."
        )
    except ApiError as exc:
        st.session_state[_ERROR_KEY] = f"Cannot sign in: {exc}"


# The callback runs before the next script run, so a good token opens the role's pages at once.
with st.form("sign_in", clear_on_submit=True):
    st.text_input("API token", type="password", key=_TOKEN_KEY)
    st.form_submit_button("Sign in", on_click=_attempt)
if error := st.session_state.pop(_ERROR_KEY, None):
    st.error(error)

provider = session.oidc_provider()
if provider:
    st.divider()
    if st.button("Sign in with single sign-on", key="sign_in_oidc"):
        st.login(None if provider == "default" else provider)
