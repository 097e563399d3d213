#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

/// The driver's own variables: those it sets for the other side (the runner, through
/// config_exec's `job_env`, and the CI job's own processes), and the one the runner's
/// environment may set for it.
public enum DriverVariable {
  /// `local`, `slurm` or `auto` in the phases' own environment (not a CI variable): the
  /// backend to use instead of the settings' `backend`; ci-local's `--backend` sets it.
  public static let backend = "CI_SLURM_BACKEND"
  /// The CI job's private directory, `<account root>/jobs/<CI job id>`, in config_exec's
  /// `job_env`, so the runner passes it to every later phase.
  public static let jobDirectory = "CI_SLURM_JOB_DIR"
  /// The pipeline's jobs ledger, in config_exec's `job_env` (ci-local reads the CI job's
  /// scheduler jobs there) and in the batch job's environment (ci-worker publish reads it).
  /// Absent when the runner gave no usable pipeline id.
  public static let jobsLedger = "CI_SLURM_JOBS_LEDGER"
}

/// One line of a pipeline's jobs ledger (JSON Lines): ci-run appends a "submitted" record
/// per scheduler job and an "ended" one when it saw the job end; ci-worker publish and
/// ci-local read them.
public struct LedgerRecord: Codable, Equatable, Sendable {
  public static let submitted = "submitted"
  public static let ended = "ended"

  /// `submitted` or `ended`.
  public var event: String
  public var ciJobID: String
  public var ciJobName: String
  public var ciJobStage: String
  /// The runner's stage (`build_script`, `step_release`); nil in ledgers of older drivers.
  public var runnerStage: String?
  /// The backend's name: `Slurm` or `local`.
  public var scheduler: String
  public var schedulerJobID: String
  public var host: String?
  /// Seconds since 1970.
  public var time: Double
  /// `succeeded` or `failed` on an ended record.
  public var result: String?

  public init(
    event: String, ciJobID: String, ciJobName: String, ciJobStage: String, runnerStage: String? = nil, scheduler: String,
    schedulerJobID: String, host: String?, time: Double, result: String?
  ) {
    (self.event, self.ciJobID, self.ciJobName, self.ciJobStage) = (event, ciJobID, ciJobName, ciJobStage)
    (self.runnerStage, self.scheduler, self.schedulerJobID) = (runnerStage, scheduler, schedulerJobID)
    (self.host, self.time, self.result) = (host, time, result)
  }

  enum CodingKeys: String, CodingKey {
    case event, scheduler, host, time, result
    case ciJobID = "ci_job_id"
    case ciJobName = "ci_job_name"
    case ciJobStage = "ci_job_stage"
    case runnerStage = "runner_stage"
    case schedulerJobID = "scheduler_job_id"
  }

  /// A ledger line that is not a record: `line` counts from 1.
  public struct ParseError: Error, Equatable, Sendable {
    public var line: Int
  }

  /// The ledger's path: one file per pipeline under the account's part of the data root.
  public static func ledgerPath(accountRoot: String, pipelineID: String) -> String {
    "\(accountRoot)/pipelines/\(pipelineID).jsonl"
  }

  /// One record as the ledger's line (sorted keys, no newline).
  public func encodedLine() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return try encoder.encode(self)
  }

  /// Every record of a ledger's text; empty lines are skipped.
  public static func decodeLines(_ data: Data) throws(ParseError) -> [LedgerRecord] {
    var records: [LedgerRecord] = []
    let decoder = JSONDecoder()
    for (number, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
      guard let record = try? decoder.decode(LedgerRecord.self, from: Data(line)) else { throw ParseError(line: number + 1) }
      records.append(record)
    }
    return records
  }
}
