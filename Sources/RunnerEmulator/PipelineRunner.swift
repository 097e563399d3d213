public import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Runs a pipeline's jobs in dependency order, several at once, each through JobRunner in a
/// child task; cancelling the task that runs it stops the pipeline as the runner's abort
/// does (running jobs get SIGTERM, then cleanup; the rest are skipped).
public struct PipelineRunner: Sendable {
  public struct Options: Sendable {
    public var concurrency = 4
    /// Run only these jobs (and nothing else); empty means all.
    public var only: [String] = []
    public var projectPath = "local/project"
    public var stateDirectory: String
    public var runner = RunnerSettings()
    /// Where the jobs' live output goes (colour decided by the caller).
    public var console = Console(colour: false)
    public init(stateDirectory: String) { self.stateDirectory = stateDirectory }
  }

  let pipeline: Pipeline
  let projectDirectory: String
  let executor: ExecutorPaths
  let options: Options

  public init(pipeline: Pipeline, projectDirectory: String, executor: ExecutorPaths, options: Options) {
    self.pipeline = pipeline
    self.projectDirectory = projectDirectory
    self.executor = executor
    self.options = options
  }

  public struct Outcome: Sendable {
    public var pipelineID: Int
    public var results: [JobResult]
    public var logDirectory: String
    public var passed: Bool { results.allSatisfy { $0.passed || $0.allowedToFail || $0.status == .skipped } }
  }

  public func run() async throws -> Outcome {
    let pipelineID = try IDCounter.next(in: options.stateDirectory)
    let logDirectory = "\(projectDirectory)/.ci-local/pipelines/\(pipelineID)"
    try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
    var jobs = pipeline.jobs.filter { $0.when != .manual && $0.when != .never }
    if !options.only.isEmpty {
      let unknown = options.only.filter { name in !pipeline.jobs.contains { $0.name == name || $0.baseName == name } }
      if !unknown.isEmpty { throw Pipeline.Error(message: "no such job: \(unknown.joined(separator: ", "))") }
      jobs = jobs.filter { options.only.contains($0.name) || options.only.contains($0.baseName) }
    }
    let selected = Set(jobs.map(\.name))
    var results: [String: JobResult] = [:]
    var running: Set<String> = []

    await withTaskGroup(of: JobResult.self) { group in
      while true {
        // Start every job whose prerequisites have ended, up to --jobs at once; a skipped
        // job can make others ready, so look again before waiting.
        var decided = false
        for (index, job) in jobs.enumerated()
        where results[job.name] == nil && !running.contains(job.name) && running.count < options.concurrency {
          let prerequisites = pipeline.prerequisites(of: job).filter { selected.contains($0.name) }
          if prerequisites.contains(where: { results[$0.name] == nil }) { continue }
          decided = true
          guard PipelineRunner.shouldRun(job, prerequisites: prerequisites.compactMap { results[$0.name] }) else {
            results[job.name] = JobResult(
              job: job.name, status: .skipped, failureReason: nil, exitCode: nil, message: nil, duration: 0, ciJobID: 0,
              schedulerJobs: [], logFile: "", allowedToFail: true)
            continue
          }
          running.insert(job.name)
          let dependencyStores = prerequisites.filter { !($0.artifactPaths + $0.reportPaths).isEmpty }.map {
            "\(logDirectory)/artifacts/\(PipelineRunner.fileName($0.name))"
          }
          group.addTask {
            await runJob(job, index: index, pipelineID: pipelineID, logDirectory: logDirectory, dependencyStores: dependencyStores)
          }
        }
        if decided { continue }
        guard let result = await group.next() else { break }
        results[result.job] = result
        running.remove(result.job)
      }
    }
    let ordered = jobs.compactMap { results[$0.name] }
    return Outcome(pipelineID: pipelineID, results: ordered, logDirectory: logDirectory)
  }

  /// GitLab's `when:` against the prerequisites' results; nothing new starts once the
  /// pipeline is cancelled.
  static func shouldRun(_ job: PipelineJob, prerequisites: [JobResult]) -> Bool {
    if Task.isCancelled { return false }
    // A skipped prerequisite means an earlier failure: GitLab skips what depends on it.
    let failedBefore = prerequisites.contains { $0.status == .skipped || !($0.passed || $0.allowedToFail) }
    switch job.when {
    case .onSuccess: return !failedBefore
    case .onFailure: return failedBefore
    case .always: return true
    case .manual, .never: return false
    }
  }

  func runJob(_ job: PipelineJob, index: Int, pipelineID: Int, logDirectory: String, dependencyStores: [String]) async -> JobResult {
    let console = options.console
    // One job at a time streams as is; several get a `[job]` prefix per line.
    let prefixed = options.concurrency > 1
    let ciJobID = (try? IDCounter.next(in: options.stateDirectory)) ?? Int(getpid())
    do {
      let log = try JobLog(
        path: "\(logDirectory)/\(PipelineRunner.fileName(job.name)).log", console: console,
        prefix: prefixed ? console.prefix(job.name, index: index) : nil)
      if !prefixed { console.line("\u{1b}[1m── \(job.name) (stage \(job.stage)) ──\u{1b}[0m") }
      let runner = JobRunner(
        job: job, ciJobID: ciJobID, pipelineID: pipelineID, projectDirectory: projectDirectory, projectPath: options.projectPath,
        executor: executor, settings: options.runner, log: log,
        artifactStore: "\(logDirectory)/artifacts/\(PipelineRunner.fileName(job.name))", dependencyStores: dependencyStores)
      let result = await runner.run()
      log.finish()
      return result
    } catch {
      console.line("ci-local: job \(job.name) did not start: \(error)")
      return JobResult(
        job: job.name, status: .failed, failureReason: "runner_system_failure", exitCode: nil, message: "\(error)", duration: 0,
        ciJobID: ciJobID, schedulerJobs: [], logFile: "", allowedToFail: job.allowFailure)
    }
  }

  static func fileName(_ job: String) -> String {
    String(job.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
  }

  /// The table printed at the end of a run.
  public static func summary(_ outcome: Outcome) -> String {
    var rows = [["job", "status", "exit", "time", "scheduler jobs"]]
    for result in outcome.results {
      var status = result.status.rawValue
      if result.status == .failed && result.allowedToFail { status = "failed (allowed)" }
      if let reason = result.failureReason, result.status == .failed { status += " (\(reason))" }
      rows.append([
        result.job, status, result.exitCode.map(String.init) ?? "-",
        result.status == .skipped ? "-" : String(format: "%.1fs", result.duration),
        result.schedulerJobs.isEmpty ? "-" : result.schedulerJobs.joined(separator: ","),
      ])
    }
    let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
    var lines = rows.map { row in
      row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
    }
    lines.insert(String(repeating: "-", count: lines[0].count), at: 1)
    let passed = outcome.results.filter(\.passed).count
    lines.append("Pipeline \(outcome.pipelineID): \(outcome.passed ? "passed" : "failed"), \(passed) of \(outcome.results.count) jobs succeeded; logs in \(outcome.logDirectory)")
    return lines.joined(separator: "\n")
  }
}

/// Machine-wide unique, increasing ids for ci-local's pipelines and jobs (the driver keys
/// its per-job directories by CI_JOB_ID, so two runs must never share one).
public enum IDCounter {
  public static func next(in directory: String) throws -> Int {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = "\(directory)/last-id"
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw Pipeline.Error(message: "cannot open \(path)") }
    defer { close(fd) }
    flock(fd, LOCK_EX)
    defer { flock(fd, LOCK_UN) }
    var buffer = [UInt8](repeating: 0, count: 32)
    let count = pread(fd, &buffer, 31, 0)
    let current = count > 0 ? Int(String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1000 : 1000
    let next = current + 1
    let text = Array("\(next)\n".utf8)
    ftruncate(fd, 0)
    _ = pwrite(fd, text, text.count, 0)
    return next
  }
}
