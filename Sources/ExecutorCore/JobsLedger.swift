import Foundation
import Scheduling

/// The pipeline's jobs ledger: one JSON line per scheduler job submitted and one when it
/// ended, appended by ci-run to `<account root>/pipelines/<pipeline id>.jsonl`. Jobs see
/// its path as `CI_SLURM_JOBS_LEDGER`, so a report job can list the pipeline's Slurm job
/// ids, nodes, queue and run times without a GitLab API token.
public struct JobsLedger: Sendable {
  public let path: String
  let account: LocalAccount?

  /// Nil when the runner gave no usable pipeline id (digits only: it names a file).
  public init?(context: JobContext) {
    guard let pipeline = context.environment.job("CI_PIPELINE_ID"), !pipeline.isEmpty, pipeline.count <= 20,
      pipeline.allSatisfy(\.isASCII), pipeline.allSatisfy(\.isNumber)
    else { return nil }
    path = "\(context.accountRoot)/pipelines/\(pipeline).jsonl"
    account = context.account
  }

  public static let variable = "CI_SLURM_JOBS_LEDGER"

  /// Appends one record with O_APPEND: concurrent jobs of a pipeline each add whole lines
  /// (one write of well under PIPE_BUF). A ledger that cannot be written never fails a job.
  public func append(_ fields: [String: String], numbers: [String: Double] = [:]) {
    var object: [String: Any] = fields
    for (key, value) in numbers { object[key] = value }
    guard var line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
    line.append(UInt8(ascii: "\n"))
    let directory = (path as NSString).deletingLastPathComponent
    if !FileManager.default.fileExists(atPath: directory) { try? PrivateFiles.makeDirectory(directory, owner: account) }
    let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { return }
    defer { close(descriptor) }
    if let account { _ = fchown(descriptor, account.uid, account.gid) }
    _ = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
  }
}
