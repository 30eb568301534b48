"""The life cycle of a sharing application (共享申请), as data: states, actions, which
role may take which action in which state, and the state each action leads to.

::

    draft ──submit──▶ submitted ──review──▶ under_review
      ▲                  │  │                  │  │  │
      │ (edit)           │  └──────return─────▶ returned ──submit──▶ submitted
      │                  ├─approve / approve narrower──▶ approved ─(period starts)─▶ active
      │                  └─refuse (reason)───▶ refused          active ─▶ expired | revoked
    withdraw: from draft, submitted, under_review, returned ─▶ withdrawn

An overdue application (no answer by its reply date) is escalated to the coordinators
(数据局): it keeps its state, gets ``escalated_at``, and a coordinator may then arbitrate
(approve or refuse in the provider's stead, with reasons). Comments are allowed in every
state by everyone who may see the application.

Everything here is pure: the store (applications.py) applies it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.errors import AccessDeniedError, ConflictError
from gateway.policy.roles import Role

__all__ = [
    "ACTIONS",
    "Action",
    "Relation",
    "State",
    "Transition",
    "check_transition",
]


class State(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    RETURNED = "returned"
    APPROVED = "approved"
    ACTIVE = "active"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    REVOKED = "revoked"

    @property
    def label_zh(self) -> str:
        return _STATE_ZH[self]

    @property
    def awaits_provider(self) -> bool:
        """The provider owes an answer (the reply clock runs)."""
        return self in (State.SUBMITTED, State.UNDER_REVIEW)

    @property
    def is_final(self) -> bool:
        return self in (State.REFUSED, State.WITHDRAWN, State.EXPIRED, State.REVOKED)


_STATE_ZH = {
    State.DRAFT: "草稿",
    State.SUBMITTED: "已提交",
    State.UNDER_REVIEW: "审核中",
    State.RETURNED: "退回补充材料",
    State.APPROVED: "已批准（未生效）",
    State.ACTIVE: "已生效",
    State.REFUSED: "不予批准",
    State.WITHDRAWN: "已撤回",
    State.EXPIRED: "已到期",
    State.REVOKED: "已撤销",
}


class Action(enum.StrEnum):
    EDIT = "edit"
    SUBMIT = "submit"
    REVIEW = "review"
    RETURN = "return"
    APPROVE = "approve"
    REFUSE = "refuse"
    WITHDRAW = "withdraw"
    ARBITRATE_APPROVE = "arbitrate_approve"
    ARBITRATE_REFUSE = "arbitrate_refuse"
    REVOKE = "revoke"
    COMMENT = "comment"


class Relation(enum.StrEnum):
    """How a person relates to an application."""

    #: Staff of the consumer department that applies (申请方).
    APPLICANT = "applicant"
    #: Security officer of the department that owns the dataset (提供方).
    PROVIDER = "provider"
    #: The coordinating bureau (数据局).
    COORDINATOR = "coordinator"
    #: Read-only (auditors).
    OBSERVER = "observer"


@dataclass(frozen=True, slots=True)
class Transition:
    #: States the action may be taken in.
    sources: frozenset[State]
    #: Who may take it.
    by: Relation
    #: The state it leads to; None: the state does not change (edit, comment).
    target: State | None
    #: A reason is mandatory (refusals, returns, revocations, arbitration).
    needs_reason: bool = False
    #: Only on an escalated application (arbitration).
    needs_escalation: bool = False


_OPEN = frozenset({State.SUBMITTED, State.UNDER_REVIEW})

#: Every action, where it may happen, by whom, and where it leads.
ACTIONS: Mapping[Action, Transition] = MappingProxyType(
    {
        Action.EDIT: Transition(frozenset({State.DRAFT, State.RETURNED}), Relation.APPLICANT, None),
        Action.SUBMIT: Transition(
            frozenset({State.DRAFT, State.RETURNED}), Relation.APPLICANT, State.SUBMITTED
        ),
        Action.REVIEW: Transition(
            frozenset({State.SUBMITTED}), Relation.PROVIDER, State.UNDER_REVIEW
        ),
        Action.RETURN: Transition(_OPEN, Relation.PROVIDER, State.RETURNED, needs_reason=True),
        # APPROVE leads to APPROVED; the store makes it ACTIVE when the period has begun.
        Action.APPROVE: Transition(_OPEN, Relation.PROVIDER, State.APPROVED),
        Action.REFUSE: Transition(_OPEN, Relation.PROVIDER, State.REFUSED, needs_reason=True),
        Action.WITHDRAW: Transition(
            frozenset({State.DRAFT, State.SUBMITTED, State.UNDER_REVIEW, State.RETURNED}),
            Relation.APPLICANT,
            State.WITHDRAWN,
        ),
        Action.ARBITRATE_APPROVE: Transition(
            _OPEN, Relation.COORDINATOR, State.APPROVED, needs_reason=True, needs_escalation=True
        ),
        Action.ARBITRATE_REFUSE: Transition(
            _OPEN, Relation.COORDINATOR, State.REFUSED, needs_reason=True, needs_escalation=True
        ),
        Action.REVOKE: Transition(
            frozenset({State.APPROVED, State.ACTIVE}),
            Relation.PROVIDER,
            State.REVOKED,
            needs_reason=True,
        ),
        Action.COMMENT: Transition(frozenset(State), Relation.OBSERVER, None),
    }
)


def relations_of(
    roles: frozenset[Role], department: str, *, consumer: str, provider: str
) -> frozenset[Relation]:
    """How a person with ``roles`` in ``department`` relates to an application of
    ``consumer`` for a dataset of ``provider`` (empty: they may not even see it)."""
    found: set[Relation] = set()
    if Role.APPLICANT in roles and department == consumer:
        found.add(Relation.APPLICANT)
    if Role.PROVIDER_OFFICER in roles and department == provider:
        found.add(Relation.PROVIDER)
    if Role.COORDINATOR in roles:
        found.add(Relation.COORDINATOR)
    if Role.AUDITOR in roles:
        found.add(Relation.OBSERVER)
    return frozenset(found)


def check_transition(
    action: Action,
    state: State,
    relations: frozenset[Relation],
    *,
    reason: str | None,
    escalated: bool,
) -> State | None:
    """The state ``action`` leads to from ``state`` for someone with ``relations``.
    Raises AccessDeniedError (not their role), ConflictError (not in this state: someone
    else acted first, or the application moved on) or ValueError (a reason is missing)."""
    transition = ACTIONS[action]
    allowed = (
        bool(relations)  # anyone who may see it may comment
        if transition.by is Relation.OBSERVER
        else transition.by in relations
    )
    if not allowed:
        raise AccessDeniedError(
            f"Only the {transition.by.value} side may {action.value} this application."
        )
    if state not in transition.sources:
        raise ConflictError(
            f"The application is {state.value} ({state.label_zh}); {action.value} is possible "
            f"only when it is {', '.join(sorted(s.value for s in transition.sources))}."
        )
    if transition.needs_escalation and not escalated:
        raise ConflictError(
            "Only an escalated (overdue) application can be arbitrated by the coordinators."
        )
    if transition.needs_reason and not (reason and reason.strip()):
        raise ValueError(f"A reason is required to {action.value} an application.")
    return transition.target
