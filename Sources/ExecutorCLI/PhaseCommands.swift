public import ArgumentParser
import Dispatch
import ExecutorCore
#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

#if canImport(Glibc)
  import Glibc
#endif

public struct ConfigCommand: DriverCommand {
  public static let configuration = CommandConfiguration(
    commandName: "ci-config",
    abstract: "gitlab-runner config_exec: print the job's builds/cache directories as JSON.")
  @OptionGroup public var driverOptions: DriverOptions
  public init() {}
  /// It only computes paths: it runs in the privileged part, touching no file.
  public static var runsAsAccount: Bool { false }

  public func run(_ environment: DriverEnvironment) throws {
    let phase = ConfigPhase(context: environment.context(), hostname: ProcessInfo.processInfo.hostName)
    let json: String
    do {
      json = try phase.output().encoded()
    } catch {
      throw DriverFailure.system("cannot encode the config JSON: \(error)")
    }
    // Only the JSON on stdout: the runner parses all of it.
    environment.console.output(Data((json + "\n").utf8))
  }
}

public struct PrepareCommand: DriverCommand {
  public static let configuration = CommandConfiguration(
    commandName: "ci-prepare",
    abstract: "gitlab-runner prepare_exec: check the job's Slurm options and create its directories.")
  @OptionGroup public var driverOptions: DriverOptions
  public init() {}

  public func run(_ environment: DriverEnvironment) throws {
    let context = environment.context()
    try PreparePhase(context: context, scheduler: try environment.scheduler(for: context), console: environment.console).run()
  }
}

public struct RunCommand: DriverCommand {
  public static let configuration = CommandConfiguration(
    commandName: "ci-run",
    abstract: "gitlab-runner run_exec: run one stage; user scripts go to Slurm, output streams back live.")
  @OptionGroup public var driverOptions: DriverOptions
  @Argument(help: "The stage script the runner wrote.") var scriptPath: String
  @Argument(help: "The stage name (build_script, step_*, get_sources, ...).") var stage: String
  public init() {}
  public var stageScriptPath: String? { scriptPath }
  public static var checksTokenLifetime: Bool { false }

  public func run(_ environment: DriverEnvironment) throws {
    let cancellation = CancellationFlag()
    SignalTrap.install(for: [SIGTERM, SIGINT, SIGHUP], flag: cancellation)
    guard let script = environment.stageScript else { throw DriverFailure.system("no stage script was read from \(scriptPath)") }
    let context = environment.context()
    let phase = RunPhase(
      context: context, scheduler: try environment.scheduler(for: context, cancellation: cancellation, watching: true), console: environment.console,
      cancellation: cancellation)
    try phase.run(script: script, stageName: stage)
  }
}

public struct CleanupCommand: DriverCommand {
  public static let configuration = CommandConfiguration(
    commandName: "ci-cleanup",
    abstract: "gitlab-runner cleanup_exec: cancel what the job left running and remove its staged scripts.")
  @OptionGroup public var driverOptions: DriverOptions
  public init() {}
  public static var checksTokenLifetime: Bool { false }

  public func run(_ environment: DriverEnvironment) throws {
    // Cleanup runs after every failed prepare attempt too, possibly with nothing to clean.
    let context = environment.context()
    CleanupPhase(context: context, scheduler: try environment.scheduler(for: context), console: environment.console).run()
  }
}

/// Turns the runner's SIGTERM (sent to our whole process group) into a flag the run loop
/// acts on: cancel the Slurm job, flush its output, exit.
enum SignalTrap {
  nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []

  static func install(for signals: [Int32], flag: CancellationFlag) {
    for number in signals {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler { flag.set() }
      source.resume()
      sources.append(source)
    }
  }
}
