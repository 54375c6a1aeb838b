"""The database schema. Alembic (``migrations/``) builds it; these classes describe it."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

MAX_ID = 2**31 - 1
"""The largest id an INTEGER primary key holds: a larger one names no record (and must not reach
PostgreSQL, which refuses it as out of range)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class ChatStatus(StrEnum):
    UNREGISTERED = "unregistered"
    REGISTERED = "registered"
    LEFT = "left"


class InboxStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    REJECTED = "rejected"
    FAILED = "failed"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class FlagSource(StrEnum):
    CHAT = "chat"
    """A message in a chat the bot checks."""
    REPORT = "report"
    """A message a parent forwarded to the school's report line: its member is the reporter."""


class FlagStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"
    ESCALATED = "escalated"


class UserRole(StrEnum):
    ADMIN = "admin"
    """Configuration and accounts."""
    SLT = "slt"
    """Reviews flags and acts on them."""
    DSL = "dsl"
    """As SLT, and also safeguarding flags."""
    VIEWER = "viewer"
    """Reports only (governors)."""


class SessionStage(StrEnum):
    PASSWORD = "password"
    """The password was right; the second factor is still to come."""
    ENROL = "enrol"
    """The password was right, and two-factor must be set up before anything else."""
    FULL = "full"


class School(Base):
    __tablename__ = "schools"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]]
    """The school file, as validated data: the policy engine is built from it."""
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    """What the admin pages set beyond the school file: rules, texts, retention, routing."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    staff: Mapped[list[StaffMember]] = relationship(back_populates="school", lazy="raise")


class StaffMember(Base):
    __tablename__ = "staff"
    __table_args__ = (UniqueConstraint("school_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200), default="")
    handles: Mapped[list[str]] = mapped_column(default=list)
    slt: Mapped[bool] = mapped_column(Boolean, default=False)
    dsl: Mapped[bool] = mapped_column(Boolean, default=False)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Set when the member links their own Telegram account to receive alerts."""
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    """E.164 (+447700900123), from the school file: for WhatsApp and SMS alerts they choose."""
    alert_channels: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    """The channels this person wants alerts on; None (never chosen) means Telegram and e-mail,
    where they can be reached on them (``bot.services.alerts.UNCHOSEN``)."""

    school: Mapped[School] = relationship(back_populates="staff", lazy="raise")


class Chat(Base):
    __tablename__ = "chats"
    __table_args__ = (UniqueConstraint("platform", "platform_chat_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_chat_id: Mapped[str] = mapped_column(String(64))
    school_id: Mapped[int | None] = mapped_column(
        ForeignKey("schools.id", ondelete="SET NULL"), index=True, default=None
    )
    title: Mapped[str] = mapped_column(String(255), default="")
    class_name: Mapped[str | None] = mapped_column(String(100), default=None)
    status: Mapped[ChatStatus] = mapped_column(String(16), default=ChatStatus.UNREGISTERED)
    observe_only: Mapped[bool] = mapped_column(Boolean, default=False)
    notice_version: Mapped[str | None] = mapped_column(String(32), default=None)
    """The consent notice members of this chat are asked to agree to."""
    bot_is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    bot_can_read_all: Mapped[bool] = mapped_column(Boolean, default=True)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    explained_at: Mapped[datetime | None] = mapped_column(default=None)
    leave_after: Mapped[datetime | None] = mapped_column(default=None)
    blind_reported_at: Mapped[datetime | None] = mapped_column(default=None)
    registered_at: Mapped[datetime | None] = mapped_column(default=None)
    left_at: Mapped[datetime | None] = mapped_column(default=None)
    member_count: Mapped[int | None] = mapped_column(Integer, default=None)
    """People in the chat as the platform last reported, the bot not counted."""
    unconsented_messages: Mapped[int] = mapped_column(Integer, default=0)
    """Messages dropped unread because their sender had not consented: a count, nothing more."""
    join_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    """A hosted WhatsApp group's join code (SHA-256): parents send it to the school's number."""


class RegistrationCode(Base):
    __tablename__ = "registration_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    class_name: Mapped[str] = mapped_column(String(100))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the code: a leaked database does not leak usable codes."""
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    chat_id: Mapped[int | None] = mapped_column(
        ForeignKey("chats.id", ondelete="SET NULL"), default=None
    )


class ChatMember(Base):
    __tablename__ = "chat_members"
    __table_args__ = (UniqueConstraint("chat_id", "platform_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    platform_user_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    username: Mapped[str | None] = mapped_column(String(64), default=None)
    private_chat_id: Mapped[str | None] = mapped_column(String(64), default=None)
    """Set once the member has started a private chat with the bot, so it can write to them."""
    platform_ref: Mapped[str | None] = mapped_column(String(64), default=None)
    """The platform's own id for the membership (a Twilio participant SID), to remove it."""
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(default=None)


class Consent(Base):
    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("chat_members.id", ondelete="CASCADE"), index=True
    )
    notice_version: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(16))
    """How it was given: "button" or "command"."""
    given_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(default=None)


class InboxItem(Base):
    """A received update, stored once. Its payload is kept only until it has been processed."""

    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("platform", "update_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    update_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[InboxStatus] = mapped_column(String(16), default=InboxStatus.PENDING, index=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class StoredMessage(Base):
    """A consenting member's message: metadata always, its words only if it was flagged."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("chat_id", "platform_message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("chat_members.id", ondelete="CASCADE"), index=True
    )
    platform_message_id: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime]
    edited_at: Mapped[datetime | None] = mapped_column(default=None)
    contacted_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    media_kinds: Mapped[list[str]] = mapped_column(default=list)
    text: Mapped[str | None] = mapped_column(Text, default=None)
    """The message's words, kept only while the message is flagged."""
    keep_until: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Flag(Base):
    """A message that breaks the code, with one reason per rule (``FlagReason``)."""

    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("chat_members.id", ondelete="CASCADE"), index=True
    )
    severity: Mapped[str] = mapped_column(String(8))
    status: Mapped[FlagStatus] = mapped_column(String(16), default=FlagStatus.OPEN, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    keep_until: Mapped[datetime]
    safeguarding: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Escalated to the DSL: from then on only the DSL sees it."""
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decision_note: Mapped[str | None] = mapped_column(Text, default=None)
    """Why: required when a flag is found not to be a breach."""
    source: Mapped[FlagSource] = mapped_column(
        String(16), default=FlagSource.CHAT, server_default=FlagSource.CHAT.value
    )
    reported_from: Mapped[str | None] = mapped_column(String(255), default=None)
    """For a report: the chat the reporter says the message came from."""

    reasons: Mapped[list[FlagReason]] = relationship(
        back_populates="flag", lazy="raise", cascade="all, delete-orphan", order_by="FlagReason.id"
    )


class FlagReason(Base):
    __tablename__ = "flag_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(40), index=True)
    severity: Mapped[str] = mapped_column(String(8))
    clause: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(8), default="rules", server_default="rules")
    """Who found it: "rules" (the word rules) or "model" (the learned layer)."""

    flag: Mapped[Flag] = relationship(back_populates="reasons", lazy="raise")


class AuditEvent(Base):
    """Who did what, when, to which record. Rows are only ever added."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int | None] = mapped_column(
        ForeignKey("schools.id", ondelete="SET NULL"), index=True, default=None
    )
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(100), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class StaffLinkCode(Base):
    """A one-time code a member of staff sends the bot privately to link their account."""

    __tablename__ = "staff_link_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class OutboxMessage(Base):
    """Something the system will say, written in the same transaction as what caused it.

    A dispatcher delivers it: it claims the row for a short lease, sends, then marks it sent. A
    crash between sending and marking leaves the lease to run out and the row to be sent again,
    so nothing is lost and a duplicate is rare; ``idempotency_key`` stops the same message being
    queued twice.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    """How it goes: "telegram" (a chat id) or "email" (an address)."""
    recipient: Mapped[str] = mapped_column(String(254))
    purpose: Mapped[str] = mapped_column(String(32), index=True)
    """"alert", "reminder", "digest", "notice", ...: what it is for, for throttling and reports."""
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    """Inline buttons as [label, callback data] pairs."""
    reply_to: Mapped[str | None] = mapped_column(String(64), default=None)
    school_id: Mapped[int | None] = mapped_column(
        ForeignKey("schools.id", ondelete="SET NULL"), index=True, default=None
    )
    flag_id: Mapped[int | None] = mapped_column(
        ForeignKey("flags.id", ondelete="SET NULL"), index=True, default=None
    )
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("chat_members.id", ondelete="SET NULL"), index=True, default=None
    )
    staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="SET NULL"), index=True, default=None
    )
    rule: Mapped[str | None] = mapped_column(String(40), default=None)
    status: Mapped[OutboxStatus] = mapped_column(
        String(16), default=OutboxStatus.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_id: Mapped[str | None] = mapped_column(String(64), default=None)
    """The platform's id for the sent message (to edit or delete it later)."""
    error: Mapped[str | None] = mapped_column(Text, default=None)


class ClosureStatus(StrEnum):
    REQUESTED = "requested"
    NOTICE_POSTED = "notice_posted"
    LOCKED = "locked"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class ChatClosure(Base):
    """SLT's request to close a chat, and how far it has got (every step is also audited)."""

    __tablename__ = "chat_closures"

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(200))
    status: Mapped[ClosureStatus] = mapped_column(
        String(16), default=ClosureStatus.REQUESTED, index=True
    )
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    grace_until: Mapped[datetime]
    notice_at: Mapped[datetime | None] = mapped_column(default=None)
    locked_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    problem: Mapped[str | None] = mapped_column(Text, default=None)
    """What the bot could not do itself (a right it lacks), as told to SLT."""


class User(Base):
    """A member of school staff who signs in to the admin pages."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    """Lower case: the sign-in name."""
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[UserRole] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    """Argon2id, with its parameters and salt."""
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    """Two-factor is on once the first code from the authenticator app was right."""
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """The time step of the last code accepted: a code is never accepted twice."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored here."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    stage: Mapped[SessionStage] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    """The absolute limit, however active the session is."""
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")


class LoginAttempt(Base):
    """One try at a password or a code, kept a short while to throttle guessing."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    ip: Mapped[str] = mapped_column(String(64), index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class JoinRequest(Base):
    """Someone asking to join a hosted WhatsApp group, until they agree to the notice (then they
    become a member) or the request runs out. Only their address is kept meanwhile."""

    __tablename__ = "join_requests"
    __table_args__ = (UniqueConstraint("chat_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    invited_by: Mapped[str | None] = mapped_column(String(100), default=None)
    """Set when the school invited the number (rather than the parent sending a join code)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class WebhookReceipt(Base):
    """A webhook already answered, and the answer given, so that a replay gets the same answer
    and changes nothing. Kept a week."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (UniqueConstraint("platform", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text, default="")


class MessagingWindow(Base):
    """When an address last wrote to the school's WhatsApp number: for 24 hours after, free-form
    messages may go to it; after that only approved templates. Kept two days."""

    __tablename__ = "messaging_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)
    last_inbound_at: Mapped[datetime]


class LearningExample(Base):
    """A decided flag the school keeps as an example for its own model (only while the school
    chooses to, and only from members who agreed to a notice saying so). It holds no words of
    its own: they are the flagged message's, so erasing those erases the example, and it goes
    with the flag at the end of retention and with the member's data on withdrawal."""

    __tablename__ = "learning_examples"

    flag_id: Mapped[int] = mapped_column(
        ForeignKey("flags.id", ondelete="CASCADE"), primary_key=True
    )
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("chat_members.id", ondelete="CASCADE"), index=True
    )
    kept_at: Mapped[datetime] = mapped_column(default=utcnow)


class SchoolModel(Base):
    """A school's own learned model: the corpus model's coefficients refitted on the corpus plus
    the school's examples, over the corpus model's vocabulary (so no word of a parent's is in
    it), as NumPy arrays (never a pickle). Also the wish to retrain it and how it did."""

    __tablename__ = "school_models"

    school_id: Mapped[int] = mapped_column(
        ForeignKey("schools.id", ondelete="CASCADE"), primary_key=True
    )
    weights: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    """``coef`` and ``intercepts`` as an .npz file; None until trained (or after an erasure)."""
    base: Mapped[str | None] = mapped_column(String(100), default=None)
    """The corpus model it was refitted from (its ``trained_on``): another base makes it moot."""
    examples: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Per rule, on the school's own examples: flagged and not a breach, before and after."""
    trained_at: Mapped[datetime | None] = mapped_column(default=None)
    requested_at: Mapped[datetime | None] = mapped_column(default=None)
    """When someone (or an erasure) asked for it to be retrained; None: nothing asked."""
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    """A trainer is at work on it until then (another process leaves it alone)."""
    problem: Mapped[str | None] = mapped_column(Text, default=None)
