"""What the service may do in Redis: its key prefixes and the commands its code sends, as one
ACL rule. The local environment gives its Redis ACL user exactly this rule
(https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/) and the Pulumi
program gives the ElastiCache RBAC user the same access string
(https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Clusters.RBAC.html: an access string is
that ACL syntax, must say `on`, and carries no password).

Derived from the code, command by command:
- node cache (persistence/node_cache.py): MGET, SET ... EX (a pipeline without MULTI), SCAN
  + DEL to clear a namespace;
- rate limiter (core/ratelimit.py): EVALSHA, and SCRIPT LOAD when the server lost the script;
  the script itself calls TIME, ZREMRANGEBYSCORE, ZCARD, ZADD, PEXPIRE, ZRANGE (ACLs apply to
  the commands a script calls too);
- health: PING (readiness, health_check_interval). AUTH and HELLO need no permission. redis-py's
  CLIENT SETINFO on connect is left out: it ignores the refusal, and Redis before 7.2 does not
  know the command (an ACL naming it is rejected).
"""

from __future__ import annotations

KEY_ROOT = "agent-service:"
NODE_CACHE_PREFIX = KEY_ROOT + "node-cache:"
RATE_LIMIT_PREFIX = KEY_ROOT + "ratelimit:"
KEY_PATTERNS = (NODE_CACHE_PREFIX + "*", RATE_LIMIT_PREFIX + "*")

COMMANDS = (
    "mget",
    "set",
    "scan",
    "del",
    "evalsha",
    "script|load",
    "time",
    "zremrangebyscore",
    "zcard",
    "zadd",
    "pexpire",
    "zrange",
    "ping",
)
# The application user's name, locally and in ElastiCache.
APP_USER = "agent-app"


def access_rules() -> list[str]:
    """The ACL rules after `on` and the passwords: no key, channel or command but these."""
    return [
        "resetkeys",
        *(f"~{pattern}" for pattern in KEY_PATTERNS),
        "resetchannels",
        "-@all",
        *(f"+{command}" for command in COMMANDS),
    ]


def access_string() -> str:
    """The ElastiCache RBAC access string of the application user."""
    return " ".join(["on", *access_rules()])
