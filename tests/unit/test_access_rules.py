"""The role × ownership × tenant table of who may see and change a customer or deal."""

from __future__ import annotations

import pytest

from crm_core.access import Actor, can_assign_owner, can_edit, can_remove_case_file, can_view
from crm_core.models import Role

TENANT, OTHER_TENANT = 1, 2
ME, TEAMMATE, STRANGER = 10, 11, 12
MY_TEAM, OTHER_TEAM = 100, 200


def actor(role: Role) -> Actor:
    visible = {ME, TEAMMATE} if role == Role.MANAGER else {ME}
    return Actor(
        user_id=ME,
        tenant_id=TENANT,
        role=role,
        team_ids=frozenset({MY_TEAM}),
        visible_owner_ids=frozenset(visible),
    )


# role, record tenant, record owner, record team, may view, may edit
CASES = [
    (Role.REP, TENANT, ME, MY_TEAM, True, True),
    (Role.REP, TENANT, TEAMMATE, MY_TEAM, False, False),
    (Role.REP, TENANT, None, MY_TEAM, True, True),  # unowned lead of my team
    (Role.REP, TENANT, None, OTHER_TEAM, False, False),
    (Role.REP, TENANT, None, None, False, False),
    (Role.REP, OTHER_TENANT, ME, MY_TEAM, False, False),
    (Role.MANAGER, TENANT, TEAMMATE, MY_TEAM, True, True),
    (Role.MANAGER, TENANT, STRANGER, OTHER_TEAM, False, False),
    (Role.MANAGER, TENANT, None, MY_TEAM, True, True),
    (Role.MANAGER, OTHER_TENANT, TEAMMATE, MY_TEAM, False, False),
    (Role.ANALYST, TENANT, STRANGER, OTHER_TEAM, True, False),
    (Role.ANALYST, TENANT, ME, MY_TEAM, True, False),
    (Role.ANALYST, OTHER_TENANT, STRANGER, None, False, False),
    (Role.ADMIN, TENANT, STRANGER, OTHER_TEAM, True, True),
    (Role.ADMIN, TENANT, None, None, True, True),
    (Role.ADMIN, OTHER_TENANT, STRANGER, None, False, False),
]


@pytest.mark.parametrize(("role", "tenant_id", "owner_id", "team_id", "visible", "editable"), CASES)
def test_visibility_and_editing_follow_role_ownership_and_tenant(
    role: Role, tenant_id: int, owner_id: int | None, team_id: int | None, visible: bool, editable: bool
) -> None:
    who = actor(role)
    assert can_view(who, tenant_id=tenant_id, owner_id=owner_id, team_id=team_id) is visible
    assert can_edit(who, tenant_id=tenant_id, owner_id=owner_id, team_id=team_id) is editable


@pytest.mark.parametrize(
    ("role", "new_owner", "allowed"),
    [
        (Role.REP, ME, True),
        (Role.REP, None, True),
        (Role.REP, TEAMMATE, False),
        (Role.MANAGER, TEAMMATE, True),
        (Role.MANAGER, STRANGER, False),
        (Role.ADMIN, STRANGER, True),
        (Role.ANALYST, ME, False),
    ],
)
def test_who_may_assign_an_owner(role: Role, new_owner: int | None, allowed: bool) -> None:
    assert can_assign_owner(actor(role), new_owner) is allowed


@pytest.mark.parametrize(
    ("role", "uploaded_by_id", "case_closed", "allowed"),
    [
        (Role.REP, ME, False, True),  # my own upload
        (Role.REP, ME, True, False),  # ... not once the case is closed
        (Role.REP, TEAMMATE, False, False),
        (Role.REP, None, False, False),  # the customer's email's file
        (Role.MANAGER, TEAMMATE, False, True),
        (Role.MANAGER, None, True, True),  # a document sent by mistake, on a closed case
        (Role.ADMIN, STRANGER, True, True),
        (Role.ANALYST, ME, False, False),
    ],
)
def test_who_may_remove_a_file_from_a_case(role: Role, uploaded_by_id: int | None, case_closed: bool,
                                           allowed: bool) -> None:
    assert can_remove_case_file(actor(role), uploaded_by_id=uploaded_by_id, case_closed=case_closed) is allowed
