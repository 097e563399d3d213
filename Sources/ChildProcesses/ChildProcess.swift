#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
import CChildProcessShims
import Synchronization

/// How a child ended.
public enum TerminationStatus: Equatable, Sendable, CustomStringConvertible {
  case exited(Int32)
  case signaled(Int32)

  public var isSuccess: Bool { self == .exited(0) }

  /// The shell's convention: 128 + signal for a signalled child.
  public var shellStatus: Int32 {
    switch self {
    case .exited(let code): return code
    case .signaled(let signal): return 128 + signal
    }
  }

  public var description: String {
    switch self {
    case .exited(let code): return "exit status \(code)"
    case .signaled(let signal): return "killed by signal \(signal)"
    }
  }
}

/// Where a child's stdout or stderr goes.
public enum OutputDestination: Sendable {
  case pipe
  case inherit
  case null
  /// Appends to (or creates, mode 0600) the file at this path.
  case file(String)
  /// stderr only: the same file as stdout, as Go's os/exec does when both are one writer
  /// (gitlab-runner's custom executor), so the two stay in the order they were written.
  case sameAsStdout
}

public struct SpawnError: Error, Equatable, CustomStringConvertible, Sendable {
  public var executable: String
  public var reason: String
  public var description: String { "cannot start \(executable): \(reason)" }
}

/// A child process started with posix_spawn.
///
/// Foundation's `Process` cannot put a child in its own process group, which both the runner
/// emulator (the runner starts each phase as a group leader and signals the group) and the
/// local backend (a job must outlive nothing but be killable as a whole) need.
///
/// Why posix_spawn and the C shim rather than swift-subprocess 1.0.2 (checked against its
/// 1.0.2 source), which does offer process groups, sessions and a uid/gid to run as:
/// - its `run` functions are all async, while the driver's phases are synchronous and
///   signal-driven;
/// - it runs an executable by name or path (`Executable.name`/`.path`), while
///   `ChildProcess.start(as:program:...)` (AccountProcess.swift) runs an already opened and
///   verified file with fexecve after dropping to the account (nothing can swap the file in
///   between);
/// - it passes the child stdin, stdout and stderr only and closes every descriptor above
///   them (closefrom/close_range from 3), while the account part gets the trusted job on
///   descriptor 3 and answers on 4;
/// - with a uid or gid set, or a session with a group, it sets the process group in a
///   forked child and ignores a failure (its `PlatformOptions.processGroupID` says so),
///   where a phase must fail rather than run outside its group;
/// - it needs swift-tools-version 6.2 where this package is 6.0.
public final class ChildProcess: Sendable {
  public let pid: Int32
  /// Read ends of the pipes, when `.pipe` was asked for.
  public let stdoutFD: Int32?
  public let stderrFD: Int32?
  /// Set once the child is reaped: waitpid may be called only once per child.
  private let reaped = Mutex<TerminationStatus?>(nil)

  /// Starts `arguments[0]` (looked up in `environment["PATH"]` when it has no slash).
  public init(
    arguments: [String],
    environment: [String: String],
    workingDirectory: String? = nil,
    stdout: OutputDestination = .pipe,
    stderr: OutputDestination = .pipe,
    newProcessGroup: Bool = false,
    newSession: Bool = false
  ) throws {
    precondition(!arguments.isEmpty, "a child needs at least its executable")
    let executable = try ChildProcess.resolve(arguments[0], path: environment["PATH"])

    var fileActions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&fileActions)
    defer { posix_spawn_file_actions_destroy(&fileActions) }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }

    posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
    var parentEnds: [Int32] = []
    var childEnds: [Int32] = []
    func wire(_ destination: OutputDestination, fd: Int32) throws -> Int32? {
      switch destination {
      case .inherit:
        return nil
      case .null:
        posix_spawn_file_actions_addopen(&fileActions, fd, "/dev/null", O_WRONLY, 0)
        return nil
      case .file(let path):
        posix_spawn_file_actions_addopen(
          &fileActions, fd, path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        return nil
      case .sameAsStdout:
        precondition(fd == 2, "only stderr can share stdout")
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)
        return nil
      case .pipe:
        var ends: [Int32] = [0, 0]
        guard ci_pipe_cloexec(&ends) == 0 else {
          throw SpawnError(executable: executable, reason: "pipe: \(String(cString: strerror(errno)))")
        }
        posix_spawn_file_actions_adddup2(&fileActions, ends[1], fd)
        parentEnds.append(ends[0])
        childEnds.append(ends[1])
        return ends[0]
      }
    }
    let outFD = try wire(stdout, fd: 1)
    let errFD = try wire(stderr, fd: 2)
    if let workingDirectory {
      _ = ci_spawn_addchdir(&fileActions, workingDirectory)
    }

    // Ignored signals stay ignored across exec: a driver that ignores SIGTERM to handle it
    // itself must not hand that to sbatch or to the job. Reset every signal and the mask.
    var defaults = sigset_t()
    sigfillset(&defaults)
    sigdelset(&defaults, SIGKILL)
    sigdelset(&defaults, SIGSTOP)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var emptyMask = sigset_t()
    sigemptyset(&emptyMask)
    posix_spawnattr_setsigmask(&attributes, &emptyMask)
    var flags = Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
    if newSession {
      flags |= Int32(ci_spawn_setsid_flag())
    } else if newProcessGroup {
      flags |= Int32(POSIX_SPAWN_SETPGROUP)
      posix_spawnattr_setpgroup(&attributes, 0)
    }
    posix_spawnattr_setflags(&attributes, Int16(flags))

    let argv = arguments.map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      argv.forEach { free($0) }
      envp.forEach { free($0) }
    }
    var childPID: pid_t = 0
    let result = posix_spawn(&childPID, executable, &fileActions, &attributes, argv, envp)
    childEnds.forEach { close($0) }
    guard result == 0 else {
      parentEnds.forEach { close($0) }
      throw SpawnError(executable: executable, reason: String(cString: strerror(result)))
    }
    pid = childPID
    stdoutFD = outFD
    stderrFD = errFD
  }

  init(pid: Int32, stdoutFD: Int32?, stderrFD: Int32?) {
    self.pid = pid
    self.stdoutFD = stdoutFD
    self.stderrFD = stderrFD
  }

  /// Finds an executable the way a shell would.
  public static func resolve(_ name: String, path: String?) throws -> String {
    if name.contains("/") {
      guard access(name, X_OK) == 0 else {
        throw SpawnError(executable: name, reason: "not an executable file")
      }
      return name
    }
    let searchPath = path ?? "/usr/local/bin:/usr/bin:/bin"
    for directory in searchPath.split(separator: ":") where !directory.isEmpty {
      let candidate = "\(directory)/\(name)"
      var info = stat()
      if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
        return candidate
      }
    }
    throw SpawnError(executable: name, reason: "not found on PATH")
  }

  /// Blocks until the child ends; safe to call more than once.
  @discardableResult
  public func wait() -> TerminationStatus {
    reaped.withLock { cached in
      if let cached { return cached }
      var status: Int32 = 0
      while waitpid(pid, &status, 0) < 0 {
        if errno != EINTR {
          cached = .exited(255)
          return .exited(255)
        }
      }
      let decoded = ChildProcess.decode(status)
      cached = decoded
      return decoded
    }
  }

  /// Non-blocking: the status if the child has ended.
  public func poll() -> TerminationStatus? {
    reaped.withLock { cached in
      if let cached { return cached }
      var status: Int32 = 0
      let result = waitpid(pid, &status, WNOHANG)
      guard result == pid else { return nil }
      let decoded = ChildProcess.decode(status)
      cached = decoded
      return decoded
    }
  }

  static func decode(_ status: Int32) -> TerminationStatus {
    let signal = status & 0x7f
    if signal == 0 { return .exited((status >> 8) & 0xff) }
    return .signaled(signal)
  }

  /// Sends a signal to the child, or to its whole process group.
  public func signal(_ signal: Int32, group: Bool = false) {
    _ = kill(group ? -pid : pid, signal)
  }
}
