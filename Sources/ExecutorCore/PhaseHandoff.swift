#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

/// What the privileged part of a phase hands the part that runs as the account (on
/// descriptor 3, read to its end), and what comes back (on descriptor 4): the only
/// channel between them. Defined once; both ends are this same executable.
public struct PhaseHandoff: Codable, Sendable {
  /// Set in the account part's environment; its value is the descriptor to read.
  public static let variable = "CI_SLURM_HANDOFF_FD"
  public static let inputDescriptor: Int32 = 3
  public static let outcomeDescriptor: Int32 = 4

  public var settings: DriverSettings
  public var job: TrustedJob
  /// run_exec's stage script, read by root from the runner's private temp dir.
  public var stageScript: Data?

  public init(settings: DriverSettings, job: TrustedJob, stageScript: Data?) {
    self.settings = settings
    self.job = job
    self.stageScript = stageScript
  }

  /// How the account part ended. Read by root as a claim from an unprivileged process:
  /// it can only choose its own job's result, and only an exit code reaches the runner.
  public struct Outcome: Codable, Equatable, Sendable {
    public var failure: DriverFailure?
    public init(failure: DriverFailure?) { self.failure = failure }

    /// At most this much is read back: one small JSON object.
    public static let maximumSize = 64 * 1024
  }
}
