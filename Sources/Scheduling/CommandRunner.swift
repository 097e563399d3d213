public import ChildProcesses
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

#if canImport(Glibc)
  import Glibc
#endif

/// One external command: an argv, never a shell line.
public struct Command: Equatable, Sendable, CustomStringConvertible {
  public var arguments: [String]
  /// The child's whole environment. Scheduler commands get a sanitised one so that CI
  /// variables (secrets among them) never reach sbatch, whose environment Slurm stores.
  public var environment: [String: String]
  public var timeout: TimeInterval

  public init(_ arguments: [String], environment: [String: String], timeout: TimeInterval = 60) {
    self.arguments = arguments
    self.environment = environment
    self.timeout = timeout
  }

  public var description: String { arguments.joined(separator: " ") }
}

public struct CommandResult: Equatable, Sendable {
  public var status: TerminationStatus
  public var stdout: String
  public var stderr: String

  public init(status: TerminationStatus, stdout: String, stderr: String) {
    self.status = status
    self.stdout = stdout
    self.stderr = stderr
  }
}

/// Every external command the schedulers run goes through this, so tests can replay
/// recorded output instead of a cluster.
public protocol CommandRunner: Sendable {
  func run(_ command: Command) throws -> CommandResult
}

/// Runs commands as real child processes, each in its own process group: the runner's
/// SIGTERM goes to ci-run's whole group, and an sbatch killed mid-submission may have
/// submitted a job whose id is then lost. ci-run handles the signal itself and lets the
/// command finish.
public struct ProcessCommandRunner: CommandRunner {
  public init() {}

  public func run(_ command: Command) throws -> CommandResult {
    let child = try ChildProcess(arguments: command.arguments, environment: command.environment, newProcessGroup: true)
    var out = Data()
    var err = Data()
    let finished = PipeDrain.drain(child, deadline: Date().addingTimeInterval(command.timeout)) {
      stream, chunk in
      if stream == .stdout { out.append(chunk) } else { err.append(chunk) }
    }
    if !finished {
      child.signal(SIGKILL)
      child.wait()
      return CommandResult(
        status: .signaled(SIGKILL), stdout: String(decoding: out, as: UTF8.self),
        stderr: "timed out after \(Int(command.timeout)) s: \(command.arguments[0])")
    }
    let status = child.wait()
    return CommandResult(
      status: status, stdout: String(decoding: out, as: UTF8.self),
      stderr: String(decoding: err, as: UTF8.self))
  }
}
