/// How a phase failed, as the runner must be told. Mapped to exit codes in one place
/// (ExecutorCLI's `ExitCodeMapper`).
public enum DriverFailure: Error, Equatable, Sendable, Codable {
  /// The user's job failed: the runner reports `exitCode` (script_failure).
  case build(exitCode: Int32, message: String?)
  /// Infrastructure trouble: the runner reports a system failure and may retry.
  case system(String)
}
