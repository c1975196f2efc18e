"""The broker's KRaft cluster id (unit): never one that kafka-storage reads as an option."""

from __future__ import annotations

import base64
import uuid

import pytest

from pipeline_props.infra import kafka


@pytest.mark.unit
def test_a_cluster_id_starting_with_a_dash_is_redrawn(monkeypatch: pytest.MonkeyPatch) -> None:
    dash = uuid.UUID(bytes=b"\xf8" + bytes(15))  # base64 index 62 first: "-..."
    plain = uuid.UUID(bytes=b"\x10" + bytes(15))
    assert base64.urlsafe_b64encode(dash.bytes).startswith(b"-")
    drawn = iter([dash, dash, plain])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(drawn))
    assert kafka.new_cluster_id() == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")


@pytest.mark.unit
def test_cluster_ids_are_22_url_safe_characters() -> None:
    for _ in range(2000):
        cid = kafka.new_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16
