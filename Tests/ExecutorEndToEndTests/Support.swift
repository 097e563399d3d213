import ChildProcesses
import CustomExecutorAPI
import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The package root and the built executables (`swift build` puts them in .build/debug).
enum Package {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path
  static let bin = ProcessInfo.processInfo.environment["CI_SLURM_BIN"] ?? "\(root)/.build/debug"
  static let fakeBin = "\(root)/Tests/ExecutorEndToEndTests/FakeBin"

  /// For ci-local run as root: a root-owned settings file with `allow_root = true` (the
  /// driver refuses to run CI jobs as root without it). Nil when not root.
  static let rootSettings: String? = {
    guard getuid() == 0 else { return nil }
    let directory = NSTemporaryDirectory() + "ci-e2e-settings-\(getpid())"
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    let path = "\(directory)/settings.toml"
    FileManager.default.createFile(atPath: path, contents: Data("allow_root = true\n".utf8), attributes: [.posixPermissions: 0o644])
    return path
  }()
}

/// The backends the driver tests run against. Slurm is always on the list in CI
/// (CI=true): there a missing cluster fails the tests instead of hiding them.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
  case slurm, local
  var testDescription: String { rawValue }
  /// The scheduler's name in the driver's lines.
  var schedulerName: String { self == .slurm ? "Slurm" : "local" }

  static let slurmIsUp: Bool = {
    guard let result = try? run(["scontrol", "ping"], env: ProcessInfo.processInfo.environment, timeout: 10) else { return false }
    return result.status == .exited(0) && result.stdout.contains("is UP")
  }()
  static let inCI = ProcessInfo.processInfo.environment["CI"] == "true"
  static var slurmRequired: Bool { inCI || slurmIsUp }
  static var available: [Backend] { slurmRequired ? [.slurm, .local] : [.local] }
  static var slurmOnly: [Backend] { slurmRequired ? [.slurm] : [] }
}

struct Run {
  var status: TerminationStatus
  var stdout: String
  var stderr: String
}

func run(_ arguments: [String], env: [String: String], cwd: String? = nil, timeout: TimeInterval = 600) throws -> Run {
  let child = try ChildProcess(arguments: arguments, environment: env, workingDirectory: cwd)
  var out = Data()
  var err = Data()
  let finished = PipeDrain.drain(child, deadline: Date().addingTimeInterval(timeout)) { stream, data in
    if stream == .stdout { out.append(data) } else { err.append(data) }
  }
  if !finished { child.signal(SIGKILL) }
  return Run(status: child.wait(), stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
}

/// One CI job as the runner would drive the driver: its environment, temp dir and the
/// phases. Each has its own data root and job id, so tests run side by side.
final class DriverJob: @unchecked Sendable {
  let backend: Backend
  let tmp: String
  let jobID: String
  /// CI_PIPELINE_ID: names the jobs ledger the driver appends to under the data root.
  let pipelineID = String(Int.random(in: 100_000...999_999_999))
  var env: [String: String]
  /// Variables in the job payload (JOB_RESPONSE_FILE) besides the CUSTOM_ENV_ ones, in
  /// GitLab's order: ID tokens, or a job's own variable shadowing a predefined one.
  var payloadVariables: [(String, String)] = []
  /// The payload's runner_info.timeout (GitLab's job timeout).
  var payloadTimeout: Int? = 600

  /// `fakeSlurm` puts FakeBin's commands first on PATH; `fakeModes` (FAKE_SBATCH=...) are
  /// baked into per-job copies, because the driver gives Slurm commands a clean environment.
  init(_ backend: Backend, parameters: String? = nil, fakeSlurm: Bool = false, fakeModes: [String: String] = [:]) throws {
    self.backend = backend
    tmp = NSTemporaryDirectory() + "ci-e2e-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    jobID = String(Int.random(in: 100_000...999_999_999))
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CUSTOM_ENV_") && !$0.key.hasPrefix("CI_SLURM") }
    if fakeSlurm {
      let bin = "\(tmp)/fakebin"
      try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
      let modes = fakeModes.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
      for command in ["sbatch", "scontrol", "squeue", "scancel", "sacct"] {
        let text = "#!/bin/sh\nexec env \(modes) \(Package.fakeBin)/\(command) \"$@\"\n"
        FileManager.default.createFile(atPath: "\(bin)/\(command)", contents: Data(text.utf8), attributes: [.posixPermissions: 0o755])
      }
      env["PATH"] = "\(bin):\(env["PATH"] ?? "/usr/bin:/bin")"
    }
    env["TMPDIR"] = tmp
    env["BUILD_FAILURE_EXIT_CODE"] = "1"
    env["SYSTEM_FAILURE_EXIT_CODE"] = "2"
    env["BUILD_EXIT_CODE_FILE"] = "\(tmp)/build_exit_code"
    env["CI_SLURM_DATA_ROOT"] = "\(tmp)/data"
    env["CI_SLURM_BACKEND"] = backend.rawValue
    env["CUSTOM_ENV_CI_JOB_ID"] = jobID
    env["CUSTOM_ENV_CI_PIPELINE_ID"] = pipelineID
    env["CUSTOM_ENV_CI_PROJECT_PATH_SLUG"] = "e2e"
    env["CUSTOM_ENV_CI_JOB_TIMEOUT"] = "600"
    env["CUSTOM_ENV_CI_JOB_TOKEN"] = "glcbt-SECRET-TOKEN-\(jobID)"
    if let parameters { env["CUSTOM_ENV_SCHEDULER_PARAMETERS"] = parameters }
    env["JOB_RESPONSE_FILE"] = "\(tmp)/response.json"
    self.env = env
    // The tests run as root; a root runner without run_as needs the admin's say-so.
    if getuid() == 0 { try settings("") }
  }

  /// Writes a settings file and points the driver at it; as root, `allowRoot` puts
  /// `allow_root = true` on top (run_as settings do not need it).
  func settings(_ text: String, allowRoot: Bool = true) throws {
    let path = "\(tmp)/settings.toml"
    try ((allowRoot && getuid() == 0 ? "allow_root = true\n" : "") + text).write(toFile: path, atomically: true, encoding: .utf8)
    env["CI_SLURM_SETTINGS"] = path
  }

  /// The runner's job payload as gitlab-runner writes it: the job's variables, then
  /// `payloadVariables`.
  func writePayload() throws {
    let variables = env.filter { $0.key.hasPrefix("CUSTOM_ENV_") }.sorted { $0.key < $1.key }
      .map { ($0.key.dropFirst("CUSTOM_ENV_".count).description, $0.value) } + payloadVariables
    let payload = JobPayload(
      id: Int(jobID)!, token: "glcbt-\(jobID)", jobInfo: .init(name: "e2e", stage: "test", projectID: 1, projectName: "e2e"),
      runnerInfo: .init(timeout: payloadTimeout), variables: variables.map { JobPayload.Variable(key: $0.0, value: $0.1) },
      steps: [])
    FileManager.default.createFile(atPath: "\(tmp)/response.json", contents: try payload.encoded(), attributes: [.posixPermissions: 0o600])
  }

  var schedulerJobName: String { "ci-e2e-\(jobID)" }

  /// The scheduler job ids the driver submitted for this CI job, from the jobs ledger it
  /// writes (the "Submitted ..." log line is for people).
  func submittedJobIDs() throws -> [String] {
    let path = LedgerRecord.ledgerPath(accountRoot: "\(tmp)/data", pipelineID: env["CUSTOM_ENV_CI_PIPELINE_ID"] ?? pipelineID)
    let records = try LedgerRecord.decodeLines(FileManager.default.contents(atPath: path) ?? Data())
    return records.filter { $0.event == LedgerRecord.submitted && $0.ciJobID == jobID }.map(\.schedulerJobID)
  }

  /// The one scheduler job the driver submitted for this CI job ("?" when not exactly one).
  func submittedJobID() throws -> String {
    let ids = try submittedJobIDs()
    #expect(ids.count == 1, "submitted jobs in the ledger: \(ids)")
    return ids.count == 1 ? ids[0] : "?"
  }
  var exitCodeFile: String? { try? String(contentsOfFile: "\(tmp)/build_exit_code", encoding: .utf8) }

  func phase(_ name: String, _ arguments: [String] = [], timeout: TimeInterval = 600) throws -> Run {
    try writePayload()
    return try run(["\(Package.bin)/\(name)"] + arguments, env: env, cwd: tmp, timeout: timeout)
  }

  /// Writes a stage script the way the runner does (0700, in a fresh dir under tmp).
  func script(_ body: String) throws -> String {
    let directory = "\(tmp)/script\(UUID().uuidString.prefix(6))"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = "\(directory)/script"
    let text = "#!/usr/bin/env bash\ntrap 'exit 1' TERM\nset -eo pipefail\nexport CI_JOB_TOKEN='\(env["CUSTOM_ENV_CI_JOB_TOKEN"]!)'\n\(body)\n"
    FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o700])
    return path
  }

  /// config, prepare, then one build_script stage.
  func runScript(_ body: String, timeout: TimeInterval = 600) throws -> Run {
    let config = try phase("ci-config")
    #expect(config.status == .exited(0), "ci-config: \(config.stderr)")
    let prepare = try phase("ci-prepare")
    #expect(prepare.status == .exited(0), "ci-prepare: \(prepare.stderr)")
    return try phase("ci-run", [try script(body), "build_script"], timeout: timeout)
  }

  /// Starts ci-run in the background (for signal tests).
  func startScript(_ body: String) throws -> ChildProcess {
    _ = try phase("ci-prepare")
    try writePayload()
    return try ChildProcess(
      arguments: ["\(Package.bin)/ci-run", try script(body), "build_script"], environment: env, workingDirectory: tmp,
      stdout: .file("\(tmp)/run.out"), stderr: .file("\(tmp)/run.err"), newProcessGroup: true)
  }

  /// Waits until ci-run (started with startScript) has shown `text` on its stdout.
  func waitForOutput(_ text: String, seconds: Double = 60) {
    _ = waitFor("'\(text)' in the job's output", seconds: seconds) {
      ((try? String(contentsOfFile: "\(tmp)/run.out", encoding: .utf8)) ?? "").contains(text)
    }
  }

  /// The Slurm jobs with this CI job's name that are not finished.
  func liveSlurmJobs() throws -> [String] {
    let result = try run(["squeue", "-h", "--name=\(schedulerJobName)", "-o", "%A %T"], env: env, timeout: 30)
    return result.stdout.split(separator: "\n").map(String.init)
  }

  func cleanup() throws {
    _ = try phase("ci-cleanup")
  }

  deinit { try? FileManager.default.removeItem(atPath: tmp) }
}

func waitFor(_ what: String, seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
  let end = Date().addingTimeInterval(seconds)
  while Date() < end {
    if try condition() { return true }
    Thread.sleep(forTimeInterval: 0.2)
  }
  Issue.record("timed out waiting for \(what)")
  return false
}
