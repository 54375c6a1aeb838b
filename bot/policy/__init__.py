"""The policy engine: pure code that decides which rules of the code of conduct a message breaks.

Nothing in this package performs I/O or imports a transport; loading files is the caller's job
(see ``bot.policy_files``). A ruff rule in ``bot/policy/ruff.toml`` enforces that.
"""

from bot.policy.engine import PolicyEngine
from bot.policy.message import ChatMessage, Media, Person, ReplyTo, Role
from bot.policy.rules import RULES, RuleId, Severity
from bot.policy.school import SchoolConfig
from bot.policy.verdict import Explanation, Verdict

__all__ = [
    "RULES",
    "ChatMessage",
    "Explanation",
    "Media",
    "Person",
    "PolicyEngine",
    "ReplyTo",
    "Role",
    "RuleId",
    "SchoolConfig",
    "Severity",
    "Verdict",
]
