"""``flywheel keys create|list|revoke``: manage API keys (the raw key is printed once, at creation); through the
data dir's running service when there is one (that needs an admin key: ``FLYWHEEL_API_KEY`` or the bootstrap key)."""

from __future__ import annotations

import typer

keys_app = typer.Typer(help="API keys with roles: agent (query, feedback), reader (lists, reports), admin (all).")


@keys_app.command("create")
def create(
    ctx: typer.Context,
    role: str = typer.Option(..., help="agent | reader | admin"),
    name: str = typer.Option("cli", help="a label for the key (who or what uses it)"),
    json_out: bool = typer.Option(False, "--json", help="print id, role and key as JSON"),
) -> None:
    """Create a key and print it once (only its sha256 is stored)."""
    from flywheel.cli import backend_of, echo_json

    created = backend_of(ctx).create_key(role, name=name)
    if json_out:
        echo_json({k: created[k] for k in ("id", "role", "name", "key")})
    else:
        typer.echo(f"key id {created['id']} (role {created['role']}); store this key now, it is not shown again:")
        typer.echo(created["key"])


@keys_app.command("list")
def list_keys(ctx: typer.Context) -> None:
    """List keys (id, role, name, created, revoked)."""
    from flywheel.cli import backend_of

    for record in backend_of(ctx).list_keys():
        revoked = record["revoked_at"].isoformat() if record["revoked_at"] else "-"
        typer.echo(f"{record['id']}\t{record['role']}\t{record['name']}\t{record['created_at'].isoformat()}\t{revoked}")


@keys_app.command("revoke")
def revoke(ctx: typer.Context, key_id: str = typer.Argument(..., help="the key id shown by create / list")) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from flywheel.cli import backend_of

    backend_of(ctx).revoke_key(key_id)
    typer.echo(f"revoked {key_id}")


def register(app: typer.Typer) -> None:
    """Add the ``keys`` sub-app to the root app."""
    app.add_typer(keys_app, name="keys")
