/// What a CI job asks of the scheduler, in sbatch's own vocabulary (our users already write
/// sbatch flags). Parsed from SCHEDULER_PARAMETERS with `JobRequest.parse`, checked against
/// the driver's rules, and rendered back as canonical `--long=value` argv words.
public struct JobRequest: Equatable, Sendable {
  /// One option, always by its long name.
  public struct Option: Equatable, Sendable {
    public var name: String
    public var value: String?
    public init(_ name: String, _ value: String? = nil) {
      self.name = name
      self.value = value
    }
    public var argument: String { value.map { "--\(name)=\($0)" } ?? "--\(name)" }
  }

  public var options: [Option]

  public init(options: [Option] = []) { self.options = options }

  public func value(of name: String) -> String? {
    options.last { $0.name == name }?.value
  }

  public func has(_ name: String) -> Bool { options.contains { $0.name == name } }

  /// The canonical argv words, in the order given.
  public var arguments: [String] { options.map(\.argument) }

  public var array: ArraySpec? {
    get throws { try value(of: "array").map { try ArraySpec(parsing: $0) } }
  }

  /// The requested time limit in seconds; nil when none was given or it is unlimited.
  public var timeLimitSeconds: Int? {
    get throws { try value(of: "time").flatMap { try SlurmTime.seconds(from: $0) } }
  }

  public struct ParseError: Error, Equatable, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
  }

  /// Parses SCHEDULER_PARAMETERS. Every word must be a known sbatch option the driver
  /// allows; a bad word gets one error naming it and what to do instead.
  public static func parse(_ line: String) throws -> JobRequest {
    let words: [String]
    do {
      words = try ShellWords.split(line)
    } catch let error as ShellWords.ParseError {
      throw ParseError(message: "SCHEDULER_PARAMETERS: \(error.message)")
    }
    var options: [Option] = []
    var index = 0
    func takeValue(for spec: SbatchOptionSpec, attached: String?, shown: String) throws -> String {
      if let attached { return attached }
      index += 1
      guard index < words.count else {
        throw ParseError(message: "SCHEDULER_PARAMETERS: \(shown) needs a value")
      }
      return words[index]
    }
    while index < words.count {
      let word = words[index]
      if word == "--" || !word.hasPrefix("-") || word == "-" {
        throw ParseError(
          message:
            "SCHEDULER_PARAMETERS: unexpected word '\(word)'; only sbatch options are allowed (the CI script is the job)"
        )
      }
      if word.hasPrefix("--") {
        let body = word.dropFirst(2)
        let name: String
        let attached: String?
        if let equals = body.firstIndex(of: "=") {
          name = String(body[..<equals])
          attached = String(body[body.index(after: equals)...])
        } else {
          name = String(body)
          attached = nil
        }
        guard let spec = SbatchOptionSpec.byLong[name] else {
          throw ParseError(message: "SCHEDULER_PARAMETERS: unknown sbatch option --\(name)\(SbatchOptionSpec.suggestion(for: name))")
        }
        try spec.checkAllowed()
        switch spec.argument {
        case .none:
          if attached != nil {
            throw ParseError(message: "SCHEDULER_PARAMETERS: --\(name) takes no value")
          }
          options.append(Option(name))
        case .optional:
          options.append(Option(name, attached))
        case .required:
          options.append(Option(name, try takeValue(for: spec, attached: attached, shown: "--\(name)")))
        }
      } else {
        // A cluster of short options: -Q, -c2, -c 2, -Oc2.
        var rest = Substring(word.dropFirst())
        while let letter = rest.first {
          rest = rest.dropFirst()
          guard let spec = SbatchOptionSpec.byShort[letter] else {
            throw ParseError(message: "SCHEDULER_PARAMETERS: unknown sbatch option -\(letter)")
          }
          try spec.checkAllowed()
          if spec.argument == .required {
            let value = try takeValue(
              for: spec, attached: rest.isEmpty ? nil : String(rest), shown: "-\(letter)")
            options.append(Option(spec.long, value))
            break
          }
          options.append(Option(spec.long))
        }
      }
      index += 1
    }
    let request = JobRequest(options: options)
    // Values the driver itself relies on are checked now, not when sbatch refuses them.
    do {
      _ = try request.array
      _ = try request.timeLimitSeconds
    } catch let error as ArraySpec.ParseError {
      throw ParseError(message: "SCHEDULER_PARAMETERS: \(error.message)")
    } catch let error as SlurmTime.ParseError {
      throw ParseError(message: "SCHEDULER_PARAMETERS: \(error.message)")
    }
    return request
  }
}

/// One sbatch option as sbatch 22.05 knows it (`sbatch --help`), and whether CI jobs may use it.
struct SbatchOptionSpec: Sendable {
  enum Argument: Sendable { case none, optional, required }
  var long: String
  var short: Character?
  var argument: Argument
  /// Why the driver refuses it; nil when allowed.
  var deniedBecause: String?

  func checkAllowed() throws {
    if let deniedBecause {
      let shown = short.map { "--\(long) (-\($0))" } ?? "--\(long)"
      throw JobRequest.ParseError(
        message: "SCHEDULER_PARAMETERS: \(shown) is not allowed: \(deniedBecause)")
    }
  }

  static func suggestion(for name: String) -> String {
    let best = all.map { ($0.long, editDistance($0.long, name)) }.min { $0.1 < $1.1 }
    guard let best, best.1 <= max(2, name.count / 3) else {
      return " (see `sbatch --help`)"
    }
    return "; did you mean --\(best.0)?"
  }

  static let owned = "the driver sets it"
  static let all: [SbatchOptionSpec] = [
    .init(long: "array", short: "a", argument: .required),
    .init(long: "account", short: "A", argument: .required),
    .init(long: "bb", argument: .required),
    .init(long: "bbf", argument: .required),
    .init(long: "begin", short: "b", argument: .required),
    .init(long: "comment", argument: .required),
    .init(long: "cpu-freq", argument: .required),
    .init(long: "cpus-per-task", short: "c", argument: .required),
    .init(long: "dependency", short: "d", argument: .required),
    .init(long: "deadline", argument: .required),
    .init(long: "delay-boot", argument: .required),
    .init(long: "chdir", short: "D", argument: .required,
          deniedBecause: "the job runs in the CI project directory"),
    .init(long: "error", short: "e", argument: .required,
          deniedBecause: "the driver owns the job's output files (it streams them into the CI log)"),
    .init(long: "export", argument: .optional,
          deniedBecause: "the driver controls the job's environment (CI variables reach the job through the CI script)"),
    .init(long: "export-file", argument: .required,
          deniedBecause: "the driver controls the job's environment"),
    .init(long: "get-user-env", argument: .optional,
          deniedBecause: "the driver controls the job's environment"),
    .init(long: "gid", argument: .required, deniedBecause: "jobs run as the CI job's own user"),
    .init(long: "gres", argument: .required),
    .init(long: "gres-flags", argument: .required),
    .init(long: "hold", short: "H", argument: .none,
          deniedBecause: "a held job would never start and the CI job would wait forever"),
    .init(long: "ignore-pbs", argument: .none),
    .init(long: "input", short: "i", argument: .required,
          deniedBecause: "the job's standard input is /dev/null"),
    .init(long: "job-name", short: "J", argument: .required,
          deniedBecause: "the driver names the Slurm job after the CI job so that it can be found"),
    .init(long: "no-kill", short: "k", argument: .optional),
    .init(long: "licenses", short: "L", argument: .required),
    .init(long: "clusters", short: "M", argument: .required,
          deniedBecause: "jobs go to the runner's own cluster"),
    .init(long: "cluster", argument: .required,
          deniedBecause: "jobs go to the runner's own cluster"),
    .init(long: "container", argument: .required),
    .init(long: "distribution", short: "m", argument: .required),
    .init(long: "mail-type", argument: .required),
    .init(long: "mail-user", argument: .required),
    .init(long: "mcs-label", argument: .required),
    .init(long: "ntasks", short: "n", argument: .required),
    .init(long: "nice", argument: .optional),
    .init(long: "no-requeue", argument: .none),
    .init(long: "ntasks-per-node", argument: .required),
    .init(long: "nodes", short: "N", argument: .required),
    .init(long: "output", short: "o", argument: .required,
          deniedBecause: "the driver owns the job's output files (it streams them into the CI log)"),
    .init(long: "open-mode", argument: .required, deniedBecause: owned),
    .init(long: "overcommit", short: "O", argument: .none),
    .init(long: "partition", short: "p", argument: .required),
    .init(long: "parsable", argument: .none, deniedBecause: owned),
    .init(long: "power", argument: .required),
    .init(long: "priority", argument: .required, deniedBecause: "only Slurm's operators may set a job's priority"),
    .init(long: "profile", argument: .required),
    .init(long: "propagate", argument: .optional),
    .init(long: "qos", short: "q", argument: .required),
    .init(long: "quiet", short: "Q", argument: .none),
    .init(long: "reboot", argument: .none, deniedBecause: "rebooting nodes is the admin's decision"),
    .init(long: "requeue", argument: .none,
          deniedBecause: "a requeued job would run the CI script a second time"),
    .init(long: "oversubscribe", short: "s", argument: .none),
    .init(long: "core-spec", short: "S", argument: .required),
    .init(long: "signal", argument: .required),
    .init(long: "spread-job", argument: .none),
    .init(long: "switches", argument: .required),
    .init(long: "thread-spec", argument: .required),
    .init(long: "time", short: "t", argument: .required),
    .init(long: "time-min", argument: .required),
    .init(long: "test-only", argument: .none, deniedBecause: owned),
    .init(long: "uid", argument: .required, deniedBecause: "jobs run as the CI job's own user"),
    .init(long: "use-min-nodes", argument: .none),
    .init(long: "verbose", short: "v", argument: .none,
          deniedBecause: "the driver reads sbatch's answer"),
    .init(long: "wait", short: "W", argument: .none,
          deniedBecause: "the driver waits for the job itself"),
    .init(long: "wckey", argument: .required),
    .init(long: "wrap", argument: .optional, deniedBecause: "the CI script is the job's script"),
    .init(long: "cluster-constraint", argument: .required),
    .init(long: "contiguous", argument: .none),
    .init(long: "constraint", short: "C", argument: .required),
    .init(long: "nodefile", short: "F", argument: .required),
    .init(long: "mem", argument: .required),
    .init(long: "mincpus", argument: .required),
    .init(long: "reservation", argument: .required),
    .init(long: "tmp", argument: .required),
    .init(long: "nodelist", short: "w", argument: .required),
    .init(long: "exclude", short: "x", argument: .required),
    .init(long: "exclusive", argument: .optional),
    .init(long: "mem-per-cpu", argument: .required),
    .init(long: "sockets-per-node", argument: .required),
    .init(long: "cores-per-socket", argument: .required),
    .init(long: "threads-per-core", argument: .required),
    .init(long: "extra-node-info", short: "B", argument: .required),
    .init(long: "ntasks-per-core", argument: .required),
    .init(long: "ntasks-per-socket", argument: .required),
    .init(long: "ntasks-per-gpu", argument: .required),
    .init(long: "cpus-per-gpu", argument: .required),
    .init(long: "gpus", short: "G", argument: .required),
    .init(long: "gpu-bind", argument: .required),
    .init(long: "gpu-freq", argument: .required),
    .init(long: "gpus-per-node", argument: .required),
    .init(long: "gpus-per-socket", argument: .required),
    .init(long: "gpus-per-task", argument: .required),
    .init(long: "mem-per-gpu", argument: .required),
    .init(long: "hint", argument: .required),
    .init(long: "mem-bind", argument: .required),
    .init(long: "kill-on-invalid-dep", argument: .required),
    .init(long: "acctg-freq", argument: .required),
    .init(long: "batch", argument: .required),
  ]
  static let byLong: [String: SbatchOptionSpec] = Dictionary(
    uniqueKeysWithValues: all.map { ($0.long, $0) })
  static let byShort: [Character: SbatchOptionSpec] = Dictionary(
    uniqueKeysWithValues: all.compactMap { spec in spec.short.map { ($0, spec) } })
}
