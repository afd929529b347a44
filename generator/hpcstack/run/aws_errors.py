"""AWS errors, by kind, each with a next step; botocore's ClientError codes mapped to them."""

from __future__ import annotations

from botocore.exceptions import ClientError

from hpcstack.errors import ToolError

_CREDENTIAL_CODES = {
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
}
_PERMISSION_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_THROTTLE_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
}
_NOT_FOUND_CODES = {"ParameterNotFound", "InvalidGroup.NotFound", "InvalidInstanceID.NotFound"}


class AwsError(ToolError):
    """An AWS call failed. `command` names the service and operation, `stderr` the raw message."""

    def __str__(self) -> str:
        text = f"{self.summary}"
        if self.command:
            text += f" [{' '.join(self.command)}]"
        if self.stderr:
            text += f"\n  {self.stderr.strip()}"
        return text


class AwsCredentialsError(AwsError):
    """No usable credentials (none found, expired, unknown profile)."""


class AwsRegionError(AwsError):
    """The region is unknown or its endpoint cannot be reached."""


class AwsPermissionError(AwsError):
    """The credentials work but may not do this."""


class AwsThrottledError(AwsError):
    """AWS kept throttling after every retry."""


class AwsNotFoundError(AwsError):
    """The instance, group or parameter asked for does not exist (in this region)."""


def client_error(exc: ClientError, command: list[str]) -> AwsError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or str(exc)
    raw = f"{code}: {message}"
    if code in _CREDENTIAL_CODES:
        return AwsCredentialsError(
            command=command,
            stderr=raw,
            summary="AWS rejected the credentials (expired or wrong account): refresh them "
            "with `aws sso login` or `aws configure`, or pass --profile NAME",
        )
    if code in _PERMISSION_CODES:
        return AwsPermissionError(
            command=command,
            stderr=raw,
            summary="the AWS identity in use may not do this: see the IAM policy in docs/aws.md",
        )
    if code in _THROTTLE_CODES:
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        return AwsThrottledError(
            command=command,
            stderr=raw,
            summary=f"AWS kept throttling requests ({attempts} retries): wait a minute "
            "and run the command again",
        )
    if code in _NOT_FOUND_CODES:
        return AwsNotFoundError(command=command, stderr=raw, summary="not found in AWS")
    return AwsError(command=command, stderr=raw, summary="AWS call failed")
