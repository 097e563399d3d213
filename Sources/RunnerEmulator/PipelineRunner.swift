public import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Runs a pipeline's jobs in dependency order, several at once, each through JobRunner.
public final class PipelineRunner: @unchecked Sendable {
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
  public let stop = StopFlag()

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

  public func run() throws -> Outcome {
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
    let board = Board()
    let lock = board.lock
    // One job at a time streams as is; several get a `[job]` prefix per line.
    let prefixed = options.concurrency > 1
    let console = options.console
    let group = DispatchGroup()

    while true {
      lock.lock()
      let pending = jobs.filter { board.results[$0.name] == nil && !board.running.contains($0.name) }
      if pending.isEmpty && board.running.isEmpty {
        lock.unlock()
        break
      }
      var started = false
      for job in pending where board.running.count < options.concurrency {
        let prerequisites = pipeline.prerequisites(of: job).filter { selected.contains($0.name) }
        if prerequisites.contains(where: { board.results[$0.name] == nil }) { continue }
        let failedBefore = prerequisites.contains { result in
          guard let r = board.results[result.name] else { return false }
          // A skipped prerequisite means an earlier failure: GitLab skips what depends on it.
          if r.status == .skipped { return true }
          return !(r.passed || r.allowedToFail)
        }
        let shouldRun: Bool
        switch job.when {
        case .onSuccess: shouldRun = !failedBefore && !stop.isSet
        case .onFailure: shouldRun = failedBefore && !stop.isSet
        case .always: shouldRun = !stop.isSet
        case .manual, .never: shouldRun = false
        }
        if !shouldRun {
          board.results[job.name] = JobResult(
            job: job.name, status: .skipped, failureReason: nil, exitCode: nil, message: nil, duration: 0, ciJobID: 0,
            schedulerJobs: [], logFile: "", allowedToFail: true)
          started = true
          continue
        }
        board.running.insert(job.name)
        started = true
        let ciJobID = (try? IDCounter.next(in: options.stateDirectory)) ?? Int(getpid())
        let jobIndex = jobs.firstIndex { $0.name == job.name } ?? 0
        let artifactStore = "\(logDirectory)/artifacts/\(PipelineRunner.fileName(job.name))"
        let dependencyStores = prerequisites.filter { !$0.artifactPaths.isEmpty }.map { "\(logDirectory)/artifacts/\(PipelineRunner.fileName($0.name))" }
        group.enter()
        let thread = Thread { [self] in
          let result: JobResult
          do {
            let log = try JobLog(
              path: "\(logDirectory)/\(PipelineRunner.fileName(job.name)).log", console: console,
              prefix: prefixed ? console.prefix(job.name, index: jobIndex) : nil)
            if !prefixed { console.line("\u{1b}[1m── \(job.name) (stage \(job.stage)) ──\u{1b}[0m") }
            let runner = JobRunner(
              job: job, ciJobID: ciJobID, pipelineID: pipelineID, projectDirectory: projectDirectory,
              projectPath: options.projectPath, executor: executor, settings: options.runner, log: log, stop: stop,
              artifactStore: artifactStore, dependencyStores: dependencyStores)
            result = runner.run()
            log.finish()
          } catch {
            result = JobResult(
              job: job.name, status: .failed, failureReason: "runner_system_failure", exitCode: nil,
              message: "\(error)", duration: 0, ciJobID: ciJobID, schedulerJobs: [], logFile: "", allowedToFail: job.allowFailure)
            console.line("ci-local: job \(job.name) did not start: \(error)")
          }
          lock.lock()
          board.results[job.name] = result
          board.running.remove(job.name)
          lock.unlock()
          group.leave()
        }
        thread.stackSize = 1 << 22
        thread.start()
      }
      lock.unlock()
      if !started { Thread.sleep(forTimeInterval: 0.05) }
    }
    group.wait()
    let ordered = jobs.compactMap { board.results[$0.name] }
    return Outcome(pipelineID: pipelineID, results: ordered, logDirectory: logDirectory)
  }

  static func fileName(_ job: String) -> String {
    String(job.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
  }

  /// Shared between the scheduling loop and the job threads; guarded by `lock`.
  final class Board: @unchecked Sendable {
    let lock = NSLock()
    var results: [String: JobResult] = [:]
    var running: Set<String> = []
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
