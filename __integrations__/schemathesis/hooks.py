"""Strategies for the formats the dispatcher's OpenAPI document names and JSON Schema cannot spell out.

`rhai-template` (a webhook's `transform`): a Rhai program that compiles, reading the variables a transform is
given. Any other string is refused with a 400 naming `transform` and where it fails to compile, which the
document says; generating arbitrary text would only test the compiler's error path.
"""

import schemathesis
from hypothesis import strategies as st

TEMPLATES = [
    "body",
    "()",
    "#{ type: body.name, payload: body.payload }",
    "#{ event: eventId, correlation: correlationId, attributes: attributes }",
    'if body.name == "ping" { () } else { body }',
    "[body.name, eventId]",
]

schemathesis.openapi.format("rhai-template", st.sampled_from(TEMPLATES))
