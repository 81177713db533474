"""The coreframe exception tree.

Every failure a user can cause or meet (bad object, missing kernel feature, no
privileges, verifier rejection) is one of these, so the CLI can print a single
line naming the cause instead of a traceback.
"""

from __future__ import annotations


class Error(Exception):
    """Root of every error coreframe raises on purpose.

    When a system call failed, ``errno`` is its errno and ``operation`` says what
    was being done (``"create map 'events'"``); both are None otherwise.
    """

    operation: str | None = None
    _errno: int | None = None

    @property
    def errno(self) -> int | None:
        """The errno of the failed system call: as given to :meth:`with_cause`, else that
        of the ``OSError`` this error was raised from."""
        if self._errno is not None:
            return self._errno
        cause = self.__cause__
        return cause.errno if isinstance(cause, OSError) else None

    def with_cause(self, errno: int | None, operation: str | None) -> Error:
        """This error, remembering the errno and the operation it comes from."""
        self._errno = errno
        self.operation = operation
        return self


class ObjectError(Error):
    """The ELF object, its BTF or its BTF.ext is malformed or unsupported."""


class BTFError(ObjectError):
    """BTF or BTF.ext is malformed, unsupported, or the kernel refused it (BPF_BTF_LOAD)."""


class RelocationError(Error):
    """A relocation (map, call or CO-RE) cannot be applied."""


class ProgramError(Error):
    """A program operation failed: loading (other than a verifier rejection), opening,
    pinning, test runs, reading its info."""


class VerifierError(ProgramError):
    """The kernel's verifier rejected a program.

    Carries the whole log; ``str()`` stays short: the program, the failing
    instruction and, when line_info was available, the C source line.
    """

    def __init__(
        self,
        program: str,
        reason: str,
        log: str = "",
        insn: int | None = None,
        source_line: str | None = None,
    ) -> None:
        self.program = program
        self.reason = reason
        self.log = log
        self.insn = insn
        self.source_line = source_line
        parts = [f"program {program!r} rejected by the verifier: {reason}"]
        if insn is not None:
            parts.append(f"at insn {insn}")
        if source_line:
            parts.append(f"({source_line})")
        super().__init__(" ".join(parts))


class AttachError(Error):
    """A program could not be attached to its hook."""


class LinkError(AttachError):
    """An operation on an existing link failed (pinning it, reading its kernel info)."""


class FeatureMissing(Error):
    """The running kernel lacks something a program or tool needs.

    ``feature`` names the kernel feature; ``hint`` says what would provide it.
    """

    def __init__(self, feature: str, hint: str = "") -> None:
        self.feature = feature
        self.hint = hint
        msg = f"kernel feature missing: {feature}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class PermissionDenied(Error):
    """The caller lacks a capability the operation needs; ``capability`` names it."""

    def __init__(self, operation: str, capability: str) -> None:
        self.operation = operation
        self.capability = capability
        super().__init__(f"{operation}: permission denied (needs {capability}; run as root)")


class MapError(Error):
    """A map operation failed for a reason other than a missing key."""


class ToolError(Error):
    """A tool plugin is broken, unknown, or was given bad options."""
