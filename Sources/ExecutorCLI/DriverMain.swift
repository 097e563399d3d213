public import ArgumentParser
import ChildProcesses
import CustomExecutorAPI
import ExecutorCore
#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import Scheduling
import Slurm

#if canImport(Glibc)
  import Glibc
#endif

/// Options every phase takes (in config.toml's `*_args`).
public struct DriverOptions: ParsableArguments {
  @Option(name: .long, help: "The driver settings file (default: $CI_SLURM_SETTINGS, else /etc/ci-slurm/settings.toml if it exists).")
  var settings: String?

  public init() {}
}

/// A phase command: parsing, settings, the trusted job, the account switch, backend
/// choice and error mapping are shared; the phase itself is library code in ExecutorCore.
public protocol DriverCommand: ParsableCommand {
  var driverOptions: DriverOptions { get }
  /// run_exec's stage script, which the privileged part reads (the runner's temp dir is
  /// root's); nil for the other phases.
  var stageScriptPath: String? { get }
  /// Whether the phase touches the job's files or the scheduler, and so runs as the
  /// job's account under run_as (config_exec only computes paths).
  static var runsAsAccount: Bool { get }
  /// Whether an expired ID token is refused: at the job's start (config, prepare), not in
  /// the stages that must still run for a job that ran out of time (run, cleanup).
  static var checksTokenLifetime: Bool { get }
  func run(_ environment: DriverEnvironment) throws
}

extension DriverCommand {
  public var stageScriptPath: String? { nil }
  public static var runsAsAccount: Bool { true }
  public static var checksTokenLifetime: Bool { true }
}

/// The composition root: the trusted job, the settings, and the one scheduler the phases use.
public struct DriverEnvironment {
  public let runner: RunnerEnvironment
  public let settings: DriverSettings
  public let trusted: TrustedJob
  /// run_exec's stage script, already read.
  public let stageScript: Data?
  public let console: DriverConsole

  public func context() -> JobContext { JobContext(environment: runner, settings: settings, trusted: trusted) }

  /// The only place a backend is chosen. `cancellation` ends the scheduler's waits (a
  /// full queue, a controller away) as soon as the runner stops the CI job. `watching`:
  /// for ci-run, whose watch reads the account's shared status answer (prepare and cleanup
  /// ask Slurm once or twice and never poll).
  public func scheduler(for context: JobContext, cancellation: CancellationFlag? = nil, watching: Bool = false) throws -> any Scheduler {
    switch try resolvedBackend() {
    case .slurm:
      var retry = RetryPolicy()
      if let cancellation { retry.isCancelled = { cancellation.isSet } }
      let console = console
      retry.note = { console.note($0) }
      if let timeout = context.jobTimeoutSeconds, timeout > 0 { retry.queuePatience = TimeInterval(timeout) }
      let slurm = SlurmScheduler(
        runner: ProcessCommandRunner(), environment: RunPhase.jobEnvironment(from: runner), retry: retry)
      guard watching, settings.statusTickSeconds > 0 else { return slurm }
      // Under the account's own root: with run_as the phase already is the account.
      return SharedStatusScheduler(
        backend: slurm, directory: context.statusDirectory, host: ProcessInfo.processInfo.hostName,
        tick: settings.statusTickSeconds, note: { console.note($0) })
    case .local, .auto:
      return LocalScheduler()
    }
  }

  public func resolvedBackend() throws -> DriverSettings.Backend {
    var backend = settings.backend
    if let forced = runner.values[DriverVariable.backend], !forced.isEmpty {
      guard let value = DriverSettings.Backend(rawValue: forced) else {
        let allowed = DriverSettings.Backend.allCases.map(\.rawValue).joined(separator: ", ")
        throw DriverFailure.system("\(DriverVariable.backend) is '\(forced.prefix(40))'; use one of \(allowed)")
      }
      backend = value
    }
    if backend == .auto {
      let found = (try? ChildProcess.resolve("sbatch", path: runner.values["PATH"])) != nil
      return found ? .slurm : .local
    }
    return backend
  }
}

public enum DriverMain {
  /// Parses, runs and exits with the code the runner expects. Never returns.
  public static func run<C: DriverCommand>(_ type: C.Type, arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
    signal(SIGPIPE, SIG_IGN)
    let runner = RunnerEnvironment(ProcessInfo.processInfo.environment)
    let command: C
    do {
      guard let parsed = try C.parseAsRoot(arguments) as? C else {
        ExitCodeMapper.exit(with: DriverFailure.system("unexpected subcommand"), runner: runner)
      }
      command = parsed
    } catch {
      // --help and --version are clean exits; any other parse error is a runner
      // configuration mistake (config.toml args), not the user's script.
      if C.exitCode(for: error) == .success {
        print(C.fullMessage(for: error))
        Glibc.exit(0)
      }
      ExitCodeMapper.exit(with: DriverFailure.system("\(C._commandName): \(C.message(for: error))"), runner: runner)
    }
    if runner.values[PhaseHandoff.variable] != nil {
      AccountPart.run(command, runner: runner)
    }
    do {
      let settings = try SettingsLoader.load(path: command.driverOptions.settings, environment: runner)
      let asRoot = geteuid() == 0
      if asRoot && settings.runAs.mode == .off && !settings.allowRoot {
        throw DriverFailure.system(
          "the runner runs as root and run_as is off, so CI jobs would run as root: turn on run_as (docs/executor.md) or set allow_root = true in the settings if that is really meant")
      }
      let trusted = try TrustedJob.resolve(environment: runner, settings: settings, checksTokenLifetime: C.checksTokenLifetime)
      let script = try command.stageScriptPath.map { try TrustedFile.read($0, what: "the stage script") }
      if asRoot, let account = trusted.account, C.runsAsAccount {
        try AccountRoot.prepare(dataRoot: settings.dataRoot, for: account)
        let handoff = PhaseHandoff(settings: settings, job: trusted, stageScript: script)
        let outcome = try PrivilegedPart.runAsAccount(handoff, account: account, arguments: CommandLine.arguments, runner: runner)
        ExitCodeMapper.exit(with: outcome.failure, runner: runner)
      }
      let environment = DriverEnvironment(
        runner: runner, settings: settings, trusted: trusted, stageScript: script, console: StandardConsole.make())
      try command.run(environment)
      ExitCodeMapper.exit(with: nil, runner: runner)
    } catch {
      ExitCodeMapper.exit(with: error, runner: runner)
    }
  }
}

/// stdout carries the job's output (and, for config, the JSON); stderr the driver's notes.
enum StandardConsole {
  static func make() -> DriverConsole {
    DriverConsole(
      output: { data in writeAll(1, data) },
      note: { text in writeAll(2, Data((text + "\n").utf8)) })
  }

  static func writeAll(_ fd: Int32, _ data: Data) {
    data.withUnsafeBytes { buffer in
      var offset = 0
      while offset < buffer.count {
        let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
        if written < 0 {
          if errno == EINTR { continue }
          return
        }
        offset += written
      }
    }
  }
}

/// Reads the settings file named by --settings, $CI_SLURM_SETTINGS or the default path.
/// As root it must be root's (`TrustedFile`). A file that is named or present but cannot
/// be read is an error, never "the defaults".
public enum SettingsLoader {
  public static let defaultPath = "/etc/ci-slurm/settings.toml"

  public static func load(path: String?, environment: RunnerEnvironment) throws -> DriverSettings {
    let home = environment.values["HOME"] ?? FileManager.default.homeDirectoryForCurrentUser.path
    let defaultRoot = environment.values["CI_SLURM_DATA_ROOT"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(home)/.ci-slurm"
    let chosen = path ?? environment.values["CI_SLURM_SETTINGS"].flatMap { $0.isEmpty ? nil : $0 }
    let file: String
    if let chosen {
      file = chosen
    } else {
      var info = stat()
      // lstat: a dangling symlink at the default path is a broken install, not "no file".
      guard lstat(defaultPath, &info) == 0 else { return DriverSettings(dataRoot: defaultRoot) }
      file = defaultPath
    }
    let data = try TrustedFile.read(file, what: "the settings file")
    guard let text = String(data: data, encoding: .utf8) else {
      throw DriverFailure.system("\(file) is not UTF-8 text")
    }
    do {
      var settings = try DriverSettings.parse(text, origin: file, defaultDataRoot: defaultRoot)
      if let root = environment.values["CI_SLURM_DATA_ROOT"], !root.isEmpty { settings.dataRoot = root }
      return settings
    } catch let error as DriverSettings.Error {
      throw DriverFailure.system("settings: \(error.message)")
    }
  }
}

/// The one place where outcomes become exit codes (gitlab-runner docs/executors/custom.md):
/// a build failure writes the script's code to BUILD_EXIT_CODE_FILE and exits with
/// BUILD_FAILURE_EXIT_CODE; everything else that goes wrong is a system failure. The codes
/// come from the runner's environment; 1 and 2 are used only when a person runs a phase by
/// hand without them.
public enum ExitCodeMapper {
  public enum Decision: Equatable {
    case success
    case build(exitCode: Int32, processExit: Int32, message: String?)
    case system(processExit: Int32, message: String)
  }

  public static func decide(_ error: (any Error)?, runner: RunnerEnvironment) -> Decision {
    let buildCode = runner.buildFailureExitCode ?? 1
    let systemCode = runner.systemFailureExitCode ?? 2
    guard let error else { return .success }
    switch error {
    case DriverFailure.build(let exitCode, let message):
      return .build(exitCode: exitCode, processExit: buildCode, message: message)
    case DriverFailure.system(let message):
      return .system(processExit: systemCode, message: message)
    case let error as SchedulerError where error.code == .requestRefused:
      // The user's request, refused by Slurm: the user can fix it, a retry cannot.
      return .build(exitCode: 1, processExit: buildCode, message: error.message)
    case let error as SchedulerError where error.code == .cancelled:
      return .build(exitCode: 143, processExit: buildCode, message: error.message)
    case let error as SchedulerError:
      return .system(processExit: systemCode, message: error.message)
    default:
      return .system(processExit: systemCode, message: ErrorText.oneLine(error))
    }
  }

  public static func exit(with error: (any Error)?, runner: RunnerEnvironment) -> Never {
    let decision = decide(error, runner: runner)
    let note = { (text: String) in StandardConsole.writeAll(2, Data((text + "\n").utf8)) }
    switch decision {
    case .success:
      if let file = runner.buildExitCodeFile { unlink(file) }
      Glibc.exit(0)
    case .build(let exitCode, let processExit, let message):
      if let message { note(message) }
      if let file = runner.buildExitCodeFile {
        // Only the integer: the runner parses the first line with Atoi.
        guard FileManager.default.createFile(atPath: file, contents: Data("\(exitCode)\n".utf8)) else {
          note("ERROR: cannot write the exit code to BUILD_EXIT_CODE_FILE=\(file)")
          Glibc.exit(runner.systemFailureExitCode ?? 2)
        }
      }
      Glibc.exit(processExit)
    case .system(let processExit, let message):
      note("ERROR: \(message)")
      Glibc.exit(processExit)
    }
  }
}
