import ArgumentParser
import Foundation
import JobIdentity
import RunnerEmulator

#if canImport(Glibc)
  import Glibc
#endif

/// ci-local: runs a .gitlab-ci.yml on this machine through the four driver executables,
/// exactly as gitlab-runner's custom executor would call them.
struct CILocal: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ci-local",
    abstract: "Run a .gitlab-ci.yml pipeline here through the ci-slurm executor (no GitLab server needed).",
    discussion: """
      Jobs run through ci-config, ci-prepare, ci-run and ci-cleanup as gitlab-runner runs them. \
      When ci-worker sits beside ci-local (a swift build), that folder comes first on the jobs' PATH, \
      so `ci-worker ...` in a script runs the build's own. With --jobs above 1 every output line \
      starts with [job name]. Colour only on a terminal, or with --color.
      """)

  enum Backend: String, ExpressibleByArgument, CaseIterable {
    case local, slurm
  }

  @Argument(help: "The pipeline file.") var file: String = ".gitlab-ci.yml"
  @Option(name: .long, help: "Run only this job (repeatable); its needs are not run.") var job: [String] = []
  @Option(name: .long, help: "How many jobs run at once (above 1, each live line gets a [job name] prefix).") var jobs: Int = 4
  @Option(
    name: .long,
    help: "local (jobs run as processes here, no Slurm needed) or slurm; sets CI_SLURM_BACKEND for the phases (default: the driver's setting, auto: Slurm when sbatch is on PATH).")
  var backend: Backend?
  @Flag(name: .long, help: "Colour even when stdout is not a terminal.") var color = false
  @Option(name: .long, help: "The project directory copied into each job (default: the pipeline file's folder).") var project: String?
  @Option(name: .long, help: "The project path, as GitLab's CI_PROJECT_PATH.") var projectPath: String?
  @Option(name: .long, help: "Folder holding ci-config, ci-prepare, ci-run, ci-cleanup (default: next to ci-local).") var executorDir: String?
  @Option(name: .long, help: "Seconds between the runner's SIGTERM and SIGKILL to a phase.") var gracefulKillTimeout: Double = 30
  @Option(name: .long, help: "A job's timeout when it sets none, in seconds.") var defaultTimeout: Int = 3600
  @Option(name: .long, help: "Set a variable for every job, NAME=VALUE (repeatable).") var variable: [String] = []
  @Option(name: .long, help: "An RSA private key (PEM) to sign the jobs' id_tokens with, as GitLab would; its JWKS goes to --jwks-out.") var idTokenKey: String?
  @Option(name: .long, help: "Write the JWKS of --id-token-key here, for the driver's run_as.jwks_file.") var jwksOut: String?
  @Option(name: .long, help: "The id_tokens' issuer (the driver's run_as.issuer).") var idTokenIssuer: String = "https://gitlab.ci-local"
  @Option(name: .long, help: "The GitLab login jobs run for (GITLAB_USER_LOGIN and the tokens' user_login; default $USER).") var user: String?
  @Flag(name: .long, help: "List the jobs and their order, run nothing.") var list = false

  func run() throws {
    let fileURL = URL(fileURLWithPath: file).standardizedFileURL
    let projectDirectory = project.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? fileURL.deletingLastPathComponent().path
    var isDirectory: ObjCBool = false
    if let project, !FileManager.default.fileExists(atPath: projectDirectory, isDirectory: &isDirectory) || !isDirectory.boolValue {
      // Never created: a typo would otherwise become an empty project and odd job failures.
      throw ValidationError("--project \(project) is not a directory; give the folder the jobs check out")
    }
    var pipeline = try Pipeline.load(file: fileURL.path, projectDirectory: projectDirectory)
    guard !pipeline.jobs.isEmpty else {
      throw ValidationError("\(file) has no jobs (hidden .jobs and keywords only); add a job with a script")
    }
    let extra = try variable.map { text -> PipelineJob.Pair in
      guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
        throw ValidationError("--variable takes NAME=VALUE, not '\(text)'")
      }
      return PipelineJob.Pair(name: String(text[..<equals]), value: String(text[text.index(after: equals)...]))
    }
    for index in pipeline.jobs.indices { pipeline.jobs[index].variables += extra }
    for warning in pipeline.warnings { FileHandle.standardError.write(Data("ci-local: warning: \(warning)\n".utf8)) }
    if list {
      for job in pipeline.jobs {
        let after = pipeline.prerequisites(of: job).map(\.name)
        print("\(job.stage)\t\(job.name)\(after.isEmpty ? "" : "\t(after: \(after.joined(separator: ", ")))")")
      }
      return
    }
    guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
    // /proc/self/exe, not argv[0]: found through PATH, argv[0] is a bare name.
    let myself = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let ownDirectory = URL(fileURLWithPath: myself).resolvingSymlinksInPath().deletingLastPathComponent().path
    let directory = executorDir ?? ownDirectory
    let executor = ExecutorPaths(directory: directory)
    for path in [executor.config, executor.prepare, executor.run, executor.cleanup] where access(path, X_OK) != 0 {
      throw ValidationError("\(path) is not an executable; build the package (swift build) or pass --executor-dir")
    }
    let home = ProcessInfo.processInfo.environment["HOME"] ?? "/tmp"
    var options = PipelineRunner.Options(stateDirectory: "\(home)/.ci-local")
    options.console = Console(colour: color || isatty(STDOUT_FILENO) == 1)
    if let backend { options.runner.baseEnvironment["CI_SLURM_BACKEND"] = backend.rawValue }
    // Run from a build, the payloads beside ci-local are the ones the jobs should call
    // (the examples' scripts say `ci-worker ...`), not whatever PATH finds first.
    if access("\(ownDirectory)/ci-worker", X_OK) == 0 {
      let path = options.runner.baseEnvironment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
      options.runner.baseEnvironment["PATH"] = "\(ownDirectory):\(path)"
    }
    options.concurrency = jobs
    options.only = job
    options.projectPath = projectPath ?? "local/\(URL(fileURLWithPath: projectDirectory).lastPathComponent)"
    options.runner.gracefulKillTimeout = gracefulKillTimeout
    options.runner.defaultJobTimeout = defaultTimeout
    if let user { options.runner.userLogin = user }
    if let idTokenKey {
      guard let pem = try? String(contentsOfFile: idTokenKey, encoding: .utf8) else {
        throw ValidationError("cannot read --id-token-key \(idTokenKey)")
      }
      let minter: IDTokenMinter
      do { minter = try IDTokenMinter(privateKeyPEM: pem) } catch { throw ValidationError("--id-token-key \(idTokenKey): \(error)") }
      if let jwksOut {
        do { try minter.jwksJSON.write(toFile: jwksOut, atomically: true, encoding: .utf8) } catch {
          throw ValidationError("cannot write --jwks-out \(jwksOut): \(error.localizedDescription)")
        }
      }
      options.runner.idTokens = IDTokenIssuer(minter: minter, issuer: idTokenIssuer)
    } else if jwksOut != nil {
      throw ValidationError("--jwks-out needs --id-token-key")
    }
    let runner = PipelineRunner(pipeline: pipeline, projectDirectory: projectDirectory, executor: executor, options: options)

    // Ctrl-C or SIGTERM: stop every running job the way the runner aborts (SIGTERM to each
    // phase's process group, then cleanup), then exit.
    var sources: [any DispatchSourceSignal] = []
    for number in [SIGINT, SIGTERM] {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler {
        FileHandle.standardError.write(Data("\nci-local: stopping: running jobs get SIGTERM, then cleanup\n".utf8))
        runner.stop.set()
      }
      source.resume()
      sources.append(source)
    }
    let outcome = try runner.run()
    print(PipelineRunner.summary(outcome))
    _ = sources
    if runner.stop.isSet { throw ExitCode(130) }
    if !outcome.passed { throw ExitCode(1) }
  }
}

CILocal.main()
