#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
public import CustomExecutorAPI
import Scheduling
#if canImport(Glibc)
  import Glibc
#endif

/// The pipeline's jobs ledger: one JSON line per scheduler job submitted and one when it
/// ended, appended by ci-run to `<account root>/pipelines/<pipeline id>.jsonl`. Jobs see
/// its path as `CI_SLURM_JOBS_LEDGER`, so a report job can list the pipeline's Slurm job
/// ids, nodes, queue and run times without a GitLab API token.
public struct JobsLedger: Sendable {
  public let path: String

  /// Nil when the runner gave no usable pipeline id (digits only: it names a file).
  public init?(context: JobContext) {
    guard let pipeline = context.environment.job("CI_PIPELINE_ID"), !pipeline.isEmpty, pipeline.count <= 20,
      pipeline.allSatisfy(\.isASCII), pipeline.allSatisfy(\.isNumber)
    else { return nil }
    path = LedgerRecord.ledgerPath(accountRoot: context.accountRoot, pipelineID: pipeline)
  }

  public static let variable = DriverVariable.jobsLedger

  /// Appends one record with O_APPEND: concurrent jobs of a pipeline each add whole lines
  /// (one write of well under PIPE_BUF). A ledger that cannot be written never fails a job.
  public func append(_ record: LedgerRecord) {
    guard var line = try? record.encodedLine() else { return }
    line.append(UInt8(ascii: "\n"))
    let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
    if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
      try? PrivateFiles.makeDirectory(directory)
    }
    // Written with the job's own rights (run_as), and never through a link a job left.
    let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
    guard descriptor >= 0 else { return }
    defer { close(descriptor) }
    _ = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
  }
}
