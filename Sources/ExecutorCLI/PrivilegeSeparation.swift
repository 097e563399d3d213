import ChildProcesses
import CustomExecutorAPI
import ExecutorCore
#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import CChildProcessShims

#if canImport(Glibc)
  import Glibc
#endif

/// The root half of a run-as phase (docs/executor.md, "Who runs what as whom"): it has read
/// the trusted inputs and made the account's root; now it starts this same program as the
/// account, hands it the trusted job on descriptor 3, and waits for its outcome on 4. It
/// touches nothing in the account's tree and gives the runner only an exit code (and the
/// integer in BUILD_EXIT_CODE_FILE, which is root's).
enum PrivilegedPart {
  static func runAsAccount(
    _ handoff: PhaseHandoff, account: Credentials, arguments: [String], runner: RunnerEnvironment
  ) throws -> PhaseHandoff.Outcome {
    let payload: Data
    do {
      payload = try JSONEncoder().encode(handoff)
    } catch {
      throw DriverFailure.system("cannot encode the job for the account part: \(error)")
    }
    // The running program itself, opened before the switch: fexecve needs no path the
    // account could search.
    let program = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
    guard program >= 0 else { throw DriverFailure.system("cannot open /proc/self/exe: \(String(cString: strerror(errno)))") }
    defer { close(program) }
    var toChild: [Int32] = [0, 0]
    var fromChild: [Int32] = [0, 0]
    guard ci_pipe_cloexec(&toChild) == 0 else { throw DriverFailure.system("pipe: \(String(cString: strerror(errno)))") }
    guard ci_pipe_cloexec(&fromChild) == 0 else {
      close(toChild[0])
      close(toChild[1])
      throw DriverFailure.system("pipe: \(String(cString: strerror(errno)))")
    }
    // The runner's SIGTERM reaches the whole process group: the account part handles it
    // (cancel, drain, verdict); this half must live on to pass the verdict on.
    for number in [SIGTERM, SIGINT, SIGHUP] { signal(number, SIG_IGN) }
    let child: ChildProcess
    do {
      child = try ChildProcess.start(
        as: account, program: program, arguments: arguments, environment: accountEnvironment(runner, account),
        workingDirectory: AccountRoot.path(dataRoot: handoff.settings.dataRoot, account: account),
        descriptors: [toChild[0], fromChild[1]])
    } catch {
      [toChild[0], toChild[1], fromChild[0], fromChild[1]].forEach { close($0) }
      throw DriverFailure.system("cannot start the phase as \(account.name): \(error)")
    }
    close(toChild[0])
    close(fromChild[1])
    StandardConsole.writeAll(toChild[1], payload)
    close(toChild[1])
    let answer = readBounded(fromChild[0], limit: PhaseHandoff.Outcome.maximumSize)
    close(fromChild[0])
    let status = child.wait()
    guard let outcome = try? JSONDecoder().decode(PhaseHandoff.Outcome.self, from: answer) else {
      throw DriverFailure.system("the phase's part running as \(account.name) ended without a result (\(status))")
    }
    if outcome.failure == nil && status != .exited(0) {
      throw DriverFailure.system("the phase's part running as \(account.name) reported success but ended with \(status)")
    }
    return outcome
  }

  /// The runner's environment as the account sees it: the account's own HOME and names,
  /// nothing that points into root's files.
  static func accountEnvironment(_ runner: RunnerEnvironment, _ account: Credentials) -> [String: String] {
    var environment = runner.values
    for name in ["HOME", "USER", "LOGNAME", "SHELL", "MAIL", "TMPDIR", "PWD", "OLDPWD", "CI_SLURM_SETTINGS", "XDG_RUNTIME_DIR"] {
      environment[name] = nil
    }
    environment["HOME"] = account.home
    environment["USER"] = account.name
    environment["LOGNAME"] = account.name
    environment["SHELL"] = account.shell.isEmpty ? "/bin/sh" : account.shell
    environment[PhaseHandoff.variable] = String(PhaseHandoff.inputDescriptor)
    return environment
  }

  static func readBounded(_ fd: Int32, limit: Int) -> Data {
    var data = Data()
    var buffer = [UInt8](repeating: 0, count: 4096)
    while data.count <= limit {
      let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if count < 0 && errno == EINTR { continue }
      if count <= 0 { break }
      data.append(contentsOf: buffer[0..<count])
    }
    return data
  }
}

/// The account half: this program started by `PrivilegedPart` as the job's account. It
/// believes only what came on descriptor 3 and reports its verdict on descriptor 4.
enum AccountPart {
  static func run<C: DriverCommand>(_ command: C, runner: RunnerEnvironment) -> Never {
    let failure: DriverFailure?
    do {
      // Root never runs this half: it would act on the handed job without the checks.
      guard getuid() != 0, geteuid() != 0 else {
        throw DriverFailure.system("\(PhaseHandoff.variable) is set but this process runs as root; it is only for the driver's own account part")
      }
      // The outcome descriptor must not leak into the job's own processes (local stages):
      // one of them could hold it open and keep root's part waiting.
      _ = fcntl(PhaseHandoff.outcomeDescriptor, F_SETFD, FD_CLOEXEC)
      let input = PrivilegedPart.readBounded(PhaseHandoff.inputDescriptor, limit: 1 << 30)
      close(PhaseHandoff.inputDescriptor)
      guard let handoff = try? JSONDecoder().decode(PhaseHandoff.self, from: input) else {
        throw DriverFailure.system("the account part got no job from the driver's root part")
      }
      let environment = DriverEnvironment(
        runner: runner, settings: handoff.settings, trusted: handoff.job, stageScript: handoff.stageScript,
        console: StandardConsole.make())
      try command.run(environment)
      failure = nil
    } catch let error as DriverFailure {
      failure = error
    } catch {
      failure = .system("\(error)")
    }
    let outcome = (try? JSONEncoder().encode(PhaseHandoff.Outcome(failure: failure))) ?? Data()
    StandardConsole.writeAll(PhaseHandoff.outcomeDescriptor, outcome)
    Glibc.exit(failure == nil ? 0 : 1)
  }
}
