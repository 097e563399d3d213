import CustomExecutorAPI
public import Foundation
import JobIdentity

#if canImport(Glibc)
  import Glibc
#endif

/// One `ci-local` invocation: loads the pipeline, checks what the command line asked for,
/// and runs (or lists) the jobs through the four driver executables.
public struct LocalRun: Sendable {
  /// Something on the command line to fix; ci-local prints it as a usage error.
  public struct UsageError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
  }

  public var file = ".gitlab-ci.yml"
  /// Only these jobs (their needs are not run).
  public var only: [String] = []
  public var concurrency = 4
  /// `local` or `slurm`, for CI_SLURM_BACKEND; nil: the driver's setting.
  public var backend: String?
  public var colour = false
  public var project: String?
  public var projectPath: String?
  public var executorDirectory: String?
  public var gracefulKillTimeout: Double = 30
  public var defaultTimeout = 3600
  /// NAME=VALUE for every job.
  public var variables: [String] = []
  public var idTokenKey: String?
  public var jwksOut: String?
  public var idTokenIssuer = "https://gitlab.ci-local"
  public var user: String?
  public var listOnly = false

  public init() {}

  /// The process's exit status: 0 passed, 1 failed, 130 stopped by Ctrl-C/SIGTERM.
  public func run() async throws -> Int32 {
    let fileURL = URL(fileURLWithPath: file).standardizedFileURL
    let projectDirectory = project.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? fileURL.deletingLastPathComponent().path
    var isDirectory: ObjCBool = false
    if let project, !FileManager.default.fileExists(atPath: projectDirectory, isDirectory: &isDirectory) || !isDirectory.boolValue {
      // Never created: a typo would otherwise become an empty project and odd job failures.
      throw UsageError("--project \(project) is not a directory; give the folder the jobs check out")
    }
    var pipeline = try Pipeline.load(file: fileURL.path, projectDirectory: projectDirectory)
    guard !pipeline.jobs.isEmpty else {
      throw UsageError("\(file) has no jobs (hidden .jobs and keywords only); add a job with a script")
    }
    let extra = try variables.map { text -> PipelineJob.Pair in
      guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
        throw UsageError("--variable takes NAME=VALUE, not '\(text)'")
      }
      return PipelineJob.Pair(name: String(text[..<equals]), value: String(text[text.index(after: equals)...]))
    }
    for index in pipeline.jobs.indices { pipeline.jobs[index].variables += extra }
    for warning in pipeline.warnings { FileHandle.standardError.write(Data("ci-local: warning: \(warning)\n".utf8)) }
    if listOnly {
      for job in pipeline.jobs {
        let after = pipeline.prerequisites(of: job).map(\.name)
        print("\(job.stage)\t\(job.name)\(after.isEmpty ? "" : "\t(after: \(after.joined(separator: ", ")))")")
      }
      return 0
    }
    guard concurrency >= 1 else { throw UsageError("--jobs must be at least 1") }
    let runner = PipelineRunner(
      pipeline: pipeline, projectDirectory: projectDirectory, executor: try executorPaths(), options: try options(projectDirectory))

    // Ctrl-C or SIGTERM cancels the pipeline's task: every running job is stopped the way
    // the runner aborts (SIGTERM to each phase's process group, then cleanup).
    let pipelineRun = Task { try await runner.run() }
    var sources: [any DispatchSourceSignal] = []
    for number in [SIGINT, SIGTERM] {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler {
        FileHandle.standardError.write(Data("\nci-local: stopping: running jobs get SIGTERM, then cleanup\n".utf8))
        pipelineRun.cancel()
      }
      source.resume()
      sources.append(source)
    }
    defer { sources.forEach { $0.cancel() } }
    let outcome = try await pipelineRun.value
    print(PipelineRunner.summary(outcome))
    if pipelineRun.isCancelled { return 130 }
    return outcome.passed ? 0 : 1
  }

  /// The driver's executables: beside ci-local unless --executor-dir says where.
  func executorPaths() throws -> ExecutorPaths {
    let executor = ExecutorPaths(directory: executorDirectory ?? LocalRun.ownDirectory)
    for path in [executor.config, executor.prepare, executor.run, executor.cleanup] where access(path, X_OK) != 0 {
      throw UsageError("\(path) is not an executable; build the package (swift build) or pass --executor-dir")
    }
    return executor
  }

  /// ci-local's own folder: /proc/self/exe, not argv[0] (found through PATH, argv[0] is a bare name).
  static var ownDirectory: String {
    let myself = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: myself).resolvingSymlinksInPath().deletingLastPathComponent().path
  }

  func options(_ projectDirectory: String) throws -> PipelineRunner.Options {
    let home = ProcessInfo.processInfo.environment["HOME"] ?? "/tmp"
    var options = PipelineRunner.Options(stateDirectory: "\(home)/.ci-local")
    options.console = Console(colour: colour || isatty(STDOUT_FILENO) == 1)
    if let backend { options.runner.baseEnvironment[DriverVariable.backend] = backend }
    // Run from a build, the payloads beside ci-local are the ones the jobs should call
    // (the examples' scripts say `ci-worker ...`), not whatever PATH finds first.
    let ownDirectory = LocalRun.ownDirectory
    if access("\(ownDirectory)/ci-worker", X_OK) == 0 {
      let path = options.runner.baseEnvironment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
      options.runner.baseEnvironment["PATH"] = "\(ownDirectory):\(path)"
    }
    options.concurrency = concurrency
    options.only = only
    options.projectPath = projectPath ?? "local/\(URL(fileURLWithPath: projectDirectory).lastPathComponent)"
    options.runner.gracefulKillTimeout = gracefulKillTimeout
    options.runner.defaultJobTimeout = defaultTimeout
    if let user { options.runner.userLogin = user }
    if let idTokenKey {
      guard let pem = try? String(contentsOfFile: idTokenKey, encoding: .utf8) else {
        throw UsageError("cannot read --id-token-key \(idTokenKey)")
      }
      let minter: IDTokenMinter
      do { minter = try IDTokenMinter(privateKeyPEM: pem) } catch { throw UsageError("--id-token-key \(idTokenKey): \(error)") }
      if let jwksOut {
        do { try minter.jwksJSON.write(toFile: jwksOut, atomically: true, encoding: .utf8) } catch {
          throw UsageError("cannot write --jwks-out \(jwksOut): \(error.localizedDescription)")
        }
      }
      options.runner.idTokens = IDTokenIssuer(minter: minter, issuer: idTokenIssuer)
    } else if jwksOut != nil {
      throw UsageError("--jwks-out needs --id-token-key")
    }
    return options
  }
}
