import DependencyGraph
public import Foundation
import SbatchModel
import WorkerTasks
import Yams

/// A pipeline described once (docs/ci-gen.md): items, stages with their command and
/// resources, and when it runs. `PipelinePlan` turns it into CI jobs.
public struct PipelineSpec: Sendable, Equatable {
  public var name: String
  public var title: String
  public var description: String
  public var source: String?
  public var triggers: [Trigger]
  /// Where DATA_RAW and DATA_DERIV live on the cluster (shell syntax, expanded in the job).
  public var dataRoot: String
  public var queueMargin: Int
  public var defaults: Resources
  public var variables: [(String, String)]
  public var items: [Item]
  public var stages: [Stage]
  /// Above this many items a stage becomes one CI job running a Slurm array over the items
  /// (GitLab's parallel:matrix stops at 200; thousands of CI jobs help nobody).
  public var maxJobsPerStage: Int
  /// Slurm's MaxArraySize on the target cluster (the largest index + 1).
  public var maxArraySize: Int
  /// The spec file as given (for errors, so an editor can jump to them).
  public var file: String
  /// The spec's path relative to the repository root, for the generated file's comments:
  /// the same spec gives the same bytes whatever the working directory (default: `file`).
  public var displayPath: String
  /// `run_as: {audience: ...}`: the runner maps users to accounts, so every job declares
  /// the ID token GitLab signs for it (the runner's run_as.audience and token_variable).
  public var idToken: IDToken?

  public struct IDToken: Sendable, Equatable {
    public var variable: String
    public var audience: String
  }

  public static func == (a: PipelineSpec, b: PipelineSpec) -> Bool {
    a.name == b.name && a.stages == b.stages && a.items == b.items && a.variables.map { "\($0)=\($1)" } == b.variables.map { "\($0)=\($1)" }
  }

  public enum Trigger: String, Sendable, CaseIterable {
    case push, schedule, web, api, trigger
    case mergeRequest = "merge_request_event"
  }

  public struct Item: Sendable, Equatable {
    public var id: String
    public var params: [(String, String)]
    public var line: Int
    public init(id: String, params: [(String, String)], line: Int) {
      self.id = id
      self.params = params
      self.line = line
    }
    public static func == (a: Item, b: Item) -> Bool { a.id == b.id && a.params.map { "\($0)=\($1)" } == b.params.map { "\($0)=\($1)" } }
  }

  public struct Stage: Sendable, Equatable {
    public var name: String
    public var script: [String]
    public var perItem: Bool
    public var resources: Resources
    public var scatter: Scatter?
    public var gather: Gather?
    /// Stage names this stage waits for; nil means the stage before it.
    public var needs: [String]?
    public var artifacts: [String]
    /// Whether the stage may read DATA_RAW (download and convert; nothing after convert).
    public var readsRaw: Bool
    public var line: Int
  }

  public struct Scatter: Sendable, Equatable {
    public var tasks: Int
    public var throttle: Int?
    /// Some failed tasks are acceptable: the CI job is allowed to fail with the driver's
    /// partial-array exit code (`ArraySpec.partialFailureExitCode`), never with another.
    public var allowPartial = false
  }

  public struct Gather: Sendable, Equatable {
    public var script: [String]
    public var resources: Resources
    public var line: Int
  }

  /// Slurm resources in one portable vocabulary.
  public struct Resources: Sendable, Equatable {
    public var cpus: Int?
    public var memory: String?
    public var timeSeconds: Int?
    public var gpus: Int?
    public var partition: String?
    public var account: String?
    public var qos: String?
    /// Further sbatch flags, checked against the driver's rules.
    public var extra: String?

    public init() {}

    /// The spec's defaults under a stage's own values.
    public func over(_ base: Resources) -> Resources {
      var merged = base
      if let cpus { merged.cpus = cpus }
      if let memory { merged.memory = memory }
      if let timeSeconds { merged.timeSeconds = timeSeconds }
      if let gpus { merged.gpus = gpus }
      if let partition { merged.partition = partition }
      if let account { merged.account = account }
      if let qos { merged.qos = qos }
      if let extra { merged.extra = [base.extra, extra].compactMap { $0 }.joined(separator: " ") }
      return merged
    }

    /// sbatch flags, in a fixed order.
    public func sbatchFlags() -> [String] {
      var flags: [String] = []
      if let partition { flags.append("--partition=\(partition)") }
      if let account { flags.append("--account=\(account)") }
      if let qos { flags.append("--qos=\(qos)") }
      if let cpus { flags.append("--cpus-per-task=\(cpus)") }
      if let memory { flags.append("--mem=\(memory)") }
      if let gpus { flags.append("--gpus=\(gpus)") }
      if let timeSeconds { flags.append("--time=\(SlurmTime.format(seconds: timeSeconds))") }
      if let extra, !extra.isEmpty { flags.append(extra) }
      return flags
    }
  }
}

/// One error in a spec: file, line and column, and what to fix.
public struct SpecError: Error, Equatable, CustomStringConvertible, Sendable {
  public var file: String
  public var line: Int
  public var column: Int
  public var message: String
  /// Line 0 means no position (the file itself could not be read).
  public var description: String { line == 0 ? message : "\(file):\(line):\(column): \(message)" }
  public init(file: String, line: Int, column: Int, message: String) {
    self.file = file
    self.line = line
    self.column = column
    self.message = message
  }
}

extension PipelineSpec {
  public static func load(file: String) throws -> PipelineSpec {
    let data: Data
    do { data = try readFile(file) } catch let error as POSIXError {
      throw SpecError(file: file, line: 0, column: 0, message: "cannot read \(file): \(String(cString: strerror(error.code.rawValue)))")
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw SpecError(file: file, line: 0, column: 0, message: "the spec is not UTF-8 text")
    }
    return try parse(text, file: file)
  }

  public static func parse(_ text: String, file: String) throws -> PipelineSpec {
    let root: Node
    do {
      guard let node = try Yams.compose(yaml: text) else {
        throw SpecError(file: file, line: 1, column: 1, message: "the spec is empty")
      }
      root = node
    } catch let error as YamlError {
      throw SpecReader.yamlError(error, file: file, text: text)
    }
    return try SpecReader(file: file).spec(root)
  }
}

/// Reads the YAML tree with every error pinned to its line and column.
struct SpecReader {
  let file: String

  func fail(_ node: Node?, _ message: String) -> SpecError {
    SpecError(file: file, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1, message: message)
  }

  static func yamlError(_ error: YamlError, file: String, text: String) -> SpecError {
    switch error {
    case .duplicatedKeysInMapping(let duplicates, let context):
      let key = duplicates.first ?? "?"
      let (line, column) = repeatOf(key, after: context.mark, in: text)
      return SpecError(file: file, line: line, column: column, message: "duplicate key '\(key)' (first at line \(context.mark.line)); keep one")
    case .composer(let context, let problem, let mark, _):
      let what = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
      return SpecError(file: file, line: mark.line, column: mark.column, message: "YAML error: \(what)")
    case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
      let what = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
      return SpecError(file: file, line: mark.line, column: mark.column, message: "YAML syntax error: \(what)")
    default:
      // Other cases (reader, memory) carry no position; their first line says what broke.
      let first = "\(error)".split(separator: "\n").first.map(String.init) ?? "unreadable"
      return SpecError(file: file, line: 1, column: 1, message: "YAML error: \(first)")
    }
  }

  /// Yams marks a duplicate key's first occurrence; the one to fix is the repeat: the same
  /// key at the same column further down (block style), else later on the same line after
  /// a comma (flow style), else the first.
  static func repeatOf(_ key: String, after first: Mark, in text: String) -> (line: Int, column: Int) {
    let lines = text.components(separatedBy: "\n")
    let spellings = [key, "\"\(key)\"", "'\(key)'"].map { "\($0):" }
    for index in first.line..<max(first.line, lines.count) {
      let characters = Array(lines[index])
      guard characters.count >= first.column else { continue }
      if spellings.contains(where: String(characters[(first.column - 1)...]).hasPrefix) { return (index + 1, first.column) }
    }
    guard first.line >= 1, first.line <= lines.count else { return (first.line, first.column) }
    let characters = Array(lines[first.line - 1])
    for comma in max(first.column - 1, 0)..<characters.count where characters[comma] == "," {
      var start = comma + 1
      while start < characters.count, characters[start] == " " { start += 1 }
      if spellings.contains(where: String(characters[start...]).hasPrefix) { return (first.line, start + 1) }
    }
    return (first.line, first.column)
  }

  func mapping(_ node: Node, _ what: String, allowed: [String]) throws -> [(key: String, keyNode: Node, value: Node)] {
    guard let map = node.mapping else { throw fail(node, "\(what) must be a mapping (key: value)") }
    var seen = Set<String>()
    return try map.map { key, value in
      guard let name = key.string else { throw fail(key, "\(what): keys must be strings") }
      guard allowed.contains(name) else {
        throw fail(key, "unknown key '\(name)' in \(what)\(suggest(name, allowed))")
      }
      guard seen.insert(name).inserted else { throw fail(key, "'\(name)' is given twice in \(what)") }
      return (name, key, value)
    }
  }

  func suggest(_ name: String, _ options: [String]) -> String {
    guard let best = options.min(by: { editDistance($0, name) < editDistance($1, name) }),
      editDistance(best, name) <= max(2, name.count / 3)
    else { return " (allowed: \(options.joined(separator: ", ")))" }
    return "; did you mean '\(best)'?"
  }

  func string(_ node: Node, _ what: String) throws -> String {
    guard let scalar = node.scalar else { throw fail(node, "\(what) must be a string") }
    return scalar.string
  }

  func integer(_ node: Node, _ what: String, _ range: ClosedRange<Int>) throws -> Int {
    guard let text = node.scalar?.string, let value = Int(text) else { throw fail(node, "\(what) must be a whole number") }
    guard range.contains(value) else {
      throw fail(node, "\(what) must be between \(range.lowerBound) and \(range.upperBound), not \(value)")
    }
    return value
  }

  func strings(_ node: Node, _ what: String) throws -> [String] {
    if let scalar = node.scalar { return [scalar.string] }
    guard let list = node.sequence else { throw fail(node, "\(what) must be a string or a list of strings") }
    return try list.map { try string($0, what) }
  }

  func variables(_ node: Node, _ what: String) throws -> [(String, String)] {
    guard let map = node.mapping else { throw fail(node, "\(what) must be a mapping NAME: value") }
    return try map.map { key, value in
      guard let name = key.string, isVariableName(name) else {
        throw fail(key, "\(what): '\(key.string ?? "?")' is not a variable name (letters, digits, _)")
      }
      return (name, try string(value, "\(what).\(name)"))
    }
  }

  func isVariableName(_ text: String) -> Bool {
    guard let first = text.first, first == "_" || first.isLetter else { return false }
    return text.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
  }

  func resources(_ node: Node, _ what: String) throws -> PipelineSpec.Resources {
    var resources = PipelineSpec.Resources()
    let keys = ["cpus", "mem", "time", "gpus", "partition", "account", "qos", "extra"]
    for (key, _, value) in try mapping(node, what, allowed: keys) {
      switch key {
      case "cpus": resources.cpus = try integer(value, "\(what).cpus", 1...4096)
      case "gpus": resources.gpus = try integer(value, "\(what).gpus", 0...64)
      case "mem": resources.memory = try memory(value, "\(what).mem")
      case "time": resources.timeSeconds = try time(value, "\(what).time")
      case "partition": resources.partition = try name(value, "\(what).partition")
      case "account": resources.account = try name(value, "\(what).account")
      case "qos": resources.qos = try name(value, "\(what).qos")
      default:
        let extra = try string(value, "\(what).extra")
        do {
          let request = try JobRequest.parse(extra)
          for owned in ["array", "time", "cpus-per-task", "mem", "partition", "account", "qos", "gpus"] where request.has(owned) {
            throw fail(value, "\(what).extra: --\(owned) has its own key here; use it instead of extra")
          }
        } catch let error as JobRequest.ParseError {
          throw fail(value, "\(what).extra: \(error.message.replacingOccurrences(of: "SCHEDULER_PARAMETERS: ", with: ""))")
        }
        resources.extra = extra
      }
    }
    return resources
  }

  func name(_ node: Node, _ what: String) throws -> String {
    let text = try string(node, what)
    guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
      throw fail(node, "\(what) '\(text)' must be letters, digits, -, _ or .")
    }
    return text
  }

  /// `512M`, `2G`, `1T`, `100` (megabytes): sbatch's notation, read as the driver reads it.
  func memory(_ node: Node, _ what: String) throws -> String {
    let text = try string(node, what)
    guard let megabytes = SlurmMemory.megabytes(text), megabytes > 0 else {
      throw fail(node, "\(what) '\(text)' is not a memory size (write e.g. 512M, 2G, 1T)")
    }
    return text.uppercased()
  }

  /// `90s`, `10m`, `1h30m`, `2d`, or Slurm's own `HH:MM:SS` / `D-HH:MM:SS`.
  func time(_ node: Node, _ what: String) throws -> Int {
    let text = try string(node, what)
    let problem = "\(what) '\(text)' is not a time (write e.g. 10m, 1h30m, 2d, or HH:MM:SS)"
    if text.contains(":") || text.contains("-") {
      guard let seconds = try? SlurmTime.seconds(from: text), seconds > 0 else { throw fail(node, problem) }
      return seconds
    }
    var total = 0
    var number = ""
    var sawUnit = false
    for character in text {
      if character.isNumber {
        number.append(character)
        continue
      }
      let unit: Int
      switch character {
      case "s": unit = 1
      case "m": unit = 60
      case "h": unit = 3600
      case "d": unit = 86400
      default: throw fail(node, problem)
      }
      guard let value = Int(number) else { throw fail(node, problem) }
      total += value * unit
      number = ""
      sawUnit = true
    }
    if !number.isEmpty {
      guard !sawUnit, let minutes = Int(number) else { throw fail(node, problem) }
      total += minutes * 60  // a bare number is minutes, as sbatch --time reads it
    }
    guard total > 0 else { throw fail(node, problem) }
    return total
  }

  static let topKeys = [
    "pipeline", "title", "description", "source", "triggers", "data_root", "queue_margin", "defaults", "variables",
    "items", "stages", "max_jobs_per_stage", "max_array_size", "run_as",
  ]

  func spec(_ root: Node) throws -> PipelineSpec {
    var spec = PipelineSpec(
      name: "", title: "", description: "", source: nil, triggers: [.web, .schedule], dataRoot: "",
      queueMargin: 1800, defaults: PipelineSpec.Resources(), variables: [], items: [], stages: [],
      maxJobsPerStage: 50, maxArraySize: 1001, file: file, displayPath: file)
    var stagesNode: Node? = nil
    var itemsNode: Node? = nil
    for (key, keyNode, value) in try mapping(root, "the spec", allowed: SpecReader.topKeys) {
      switch key {
      case "pipeline": spec.name = try name(value, "pipeline")
      case "title": spec.title = try string(value, "title")
      case "description": spec.description = try string(value, "description")
      case "source": spec.source = try string(value, "source")
      case "data_root": spec.dataRoot = try string(value, "data_root")
      case "queue_margin": spec.queueMargin = try time(value, "queue_margin")
      case "max_jobs_per_stage": spec.maxJobsPerStage = try integer(value, "max_jobs_per_stage", 1...200)
      case "max_array_size": spec.maxArraySize = try integer(value, "max_array_size", 1...4_000_000)
      case "triggers":
        spec.triggers = try strings(value, "triggers").map { text in
          let normalized = text == "merge_request" ? "merge_request_event" : text
          guard let trigger = PipelineSpec.Trigger(rawValue: normalized) else {
            throw fail(value, "triggers: '\(text)' is not one of push, schedule, web, api, trigger, merge_request")
          }
          return trigger
        }
      case "defaults":
        for (inner, _, innerValue) in try mapping(value, "defaults", allowed: ["resources"]) where inner == "resources" {
          spec.defaults = try resources(innerValue, "defaults.resources")
        }
      case "variables": spec.variables = try variables(value, "variables")
      case "run_as":
        var token = PipelineSpec.IDToken(variable: "CI_SLURM_ID_TOKEN", audience: "")
        for (inner, _, innerValue) in try mapping(value, "run_as", allowed: ["audience", "token_variable"]) {
          if inner == "audience" { token.audience = try string(innerValue, "run_as.audience") }
          if inner == "token_variable" { token.variable = try name(innerValue, "run_as.token_variable") }
        }
        guard !token.audience.isEmpty else {
          throw fail(value, "run_as needs 'audience:', the runner's run_as.audience (ask the cluster admin)")
        }
        spec.idToken = token
      case "items": itemsNode = value
      case "stages": stagesNode = value
      default: throw fail(keyNode, "unknown key '\(key)'")
      }
    }
    guard !spec.name.isEmpty else { throw fail(root, "the spec needs 'pipeline: <name>'") }
    if spec.title.isEmpty { spec.title = spec.name }
    if spec.dataRoot.isEmpty { spec.dataRoot = "${SCRATCH:-$HOME/scratch}/\(spec.name)" }
    if let itemsNode { spec.items = try items(itemsNode) }
    guard let stagesNode else { throw fail(root, "the spec needs 'stages:' (a list of stages)") }
    spec.stages = try stages(stagesNode, hasItems: !spec.items.isEmpty, spec: spec)
    try checkStageGraph(spec, stagesNode)
    return spec
  }

  func items(_ node: Node) throws -> [PipelineSpec.Item] {
    guard let list = node.sequence else { throw fail(node, "items must be a list of {id: ..., params: {...}}") }
    guard !list.isEmpty else { throw fail(node, "items is empty: list at least one item, or leave 'items' out") }
    var seen: [String: Int] = [:]
    return try list.map { entry in
      var id: String? = nil
      var params: [(String, String)] = []
      if let text = entry.scalar?.string {
        id = text
      } else {
        for (key, _, value) in try mapping(entry, "an item", allowed: ["id", "params"]) {
          if key == "id" { id = try string(value, "item id") } else {
            params = try variables(value, "item params")
            // The items manifest of array mode is one tab-separated line per item.
            if let bad = params.first(where: { $0.1.contains("\t") || $0.1.contains("\n") }) {
              throw fail(value, "item param \(bad.0) must be one line without tabs")
            }
          }
        }
      }
      guard let id, !id.isEmpty else { throw fail(entry, "an item needs an id") }
      guard id.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
        throw fail(entry, "item id '\(id)' must be at most 64 letters, digits, -, _ or .")
      }
      let line = entry.mark?.line ?? 0
      if let first = seen[id] { throw fail(entry, "duplicate item id '\(id)' (first at line \(first))") }
      seen[id] = line
      return PipelineSpec.Item(id: id, params: params, line: line)
    }
  }

  static let stageKeys = ["name", "script", "task", "args", "per_item", "resources", "scatter", "gather", "needs", "artifacts", "reads_raw"]

  func command(_ value: [String: Node], _ what: String, at node: Node) throws -> [String] {
    if let script = value["script"] {
      if value["task"] != nil { throw fail(node, "\(what): give either script or task, not both") }
      if let args = value["args"] { throw fail(args, "\(what).args go with task:; with script:, write the arguments in the script") }
      let lines = try strings(script, "\(what).script")
      guard !lines.isEmpty, !lines.contains(where: { $0.allSatisfy(\.isWhitespace) }) else {
        throw fail(script, "\(what).script is empty or has an empty command; write the commands to run")
      }
      return lines
    }
    guard let task = value["task"] else { throw fail(node, "\(what) needs a script (any commands) or a task (a ci-worker task)") }
    let taskName = try name(task, "\(what).task")
    guard WorkerTask(rawValue: taskName) != nil else {
      throw fail(task, "\(what).task '\(taskName)' is not a ci-worker task\(suggest(taskName, WorkerTask.names)) (or write script: for any command)")
    }
    var args: [String] = []
    if let node = value["args"] {
      // A string would be one shell word ("--out public" as a single argument), never
      // what was meant.
      guard let list = node.sequence else {
        throw fail(node, "\(what).args must be a list, one word each: [\((node.scalar?.string ?? "...").split(separator: " ").joined(separator: ", "))]")
      }
      args = try list.map { try string($0, "\(what).args") }
    }
    return [(["ci-worker", taskName] + args.map(SpecReader.shellWord)).joined(separator: " ")]
  }

  /// An argument as one shell word that still expands `$VARIABLES`: double-quoted unless plain.
  static func shellWord(_ text: String) -> String {
    let plain = !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_=./:,%@+".contains($0)) }
    if plain { return text }
    var out = "\""
    for character in text {
      if "\"\\`".contains(character) { out.append("\\") }
      out.append(character)
    }
    return out + "\""
  }

  func stages(_ node: Node, hasItems: Bool, spec: PipelineSpec) throws -> [PipelineSpec.Stage] {
    guard let list = node.sequence, !list.isEmpty else { throw fail(node, "stages must be a non-empty list") }
    var names: [String: Int] = [:]
    var result: [PipelineSpec.Stage] = []
    for (index, entry) in list.enumerated() {
      let fields = try mapping(entry, "stage \(index + 1)", allowed: SpecReader.stageKeys)
      var values: [String: Node] = [:]
      for field in fields { values[field.key] = field.value }
      guard let nameNode = values["name"] else { throw fail(entry, "stage \(index + 1) needs a name") }
      let stageName = try name(nameNode, "stage name")
      let what = "stage '\(stageName)'"
      if let first = names[stageName] { throw fail(nameNode, "duplicate stage name '\(stageName)' (first at line \(first))") }
      names[stageName] = nameNode.mark?.line ?? 0
      var perItem = hasItems
      if let value = values["per_item"] {
        guard let flag = value.bool else { throw fail(value, "\(what).per_item must be true or false") }
        if flag && !hasItems { throw fail(value, "\(what).per_item: the spec has no items") }
        perItem = flag
      }
      var scatter: PipelineSpec.Scatter? = nil
      if let value = values["scatter"] {
        var tasks = 0
        var throttle: Int? = nil
        var allowPartial = false
        for (key, _, inner) in try mapping(value, "\(what).scatter", allowed: ["tasks", "throttle", "allow_partial"]) {
          switch key {
          case "tasks": tasks = try integer(inner, "\(what).scatter.tasks", 1...spec.maxArraySize)
          case "throttle": throttle = try integer(inner, "\(what).scatter.throttle", 1...100_000)
          default:
            guard let flag = inner.bool else { throw fail(inner, "\(what).scatter.allow_partial must be true or false") }
            allowPartial = flag
          }
        }
        guard tasks > 0 else { throw fail(value, "\(what).scatter needs tasks: N") }
        if let throttle, throttle > tasks {
          throw fail(value, "\(what).scatter.throttle \(throttle) is more than its \(tasks) tasks; write throttle: \(tasks) or less, or leave it out")
        }
        scatter = PipelineSpec.Scatter(tasks: tasks, throttle: throttle, allowPartial: allowPartial)
      }
      var gather: PipelineSpec.Gather? = nil
      if let value = values["gather"] {
        guard scatter != nil else { throw fail(value, "\(what).gather needs a scatter to gather") }
        var inner: [String: Node] = [:]
        for field in try mapping(value, "\(what).gather", allowed: ["script", "task", "args", "resources"]) { inner[field.key] = field.value }
        let resources = try inner["resources"].map { try self.resources($0, "\(what).gather.resources") } ?? .init()
        gather = PipelineSpec.Gather(script: try command(inner, "\(what).gather", at: value), resources: resources, line: value.mark?.line ?? 0)
      }
      let needs = try values["needs"].map { try strings($0, "\(what).needs") }
      var readsRaw = ["download", "convert"].contains(stageName)
      if let value = values["reads_raw"] {
        guard let flag = value.bool else { throw fail(value, "\(what).reads_raw must be true or false") }
        readsRaw = flag
      }
      result.append(
        PipelineSpec.Stage(
          name: stageName, script: try command(values, what, at: entry), perItem: perItem,
          resources: try values["resources"].map { try resources($0, "\(what).resources") } ?? .init(),
          scatter: scatter, gather: gather, needs: needs,
          artifacts: try values["artifacts"].map { try strings($0, "\(what).artifacts") } ?? [],
          readsRaw: readsRaw, line: entry.mark?.line ?? 0))
    }
    return result
  }

  func checkStageGraph(_ spec: PipelineSpec, _ node: Node) throws {
    let names = spec.stages.map(\.name)
    let list = node.sequence ?? []
    for (index, stage) in spec.stages.enumerated() {
      for need in stage.needs ?? [] where !names.contains(need) {
        throw fail(list[index], "stage '\(stage.name)' needs '\(need)', which is not a stage\(suggest(need, names))")
      }
      if stage.needs?.contains(stage.name) == true { throw fail(list[index], "stage '\(stage.name)' needs itself") }
    }
    // Through needs (default: the stage before).
    if let cycle = DependencyGraph.firstCycle(from: names, edges: { PipelinePlan.dependencies(of: $0, in: spec) }) {
      throw fail(list[names.firstIndex(of: cycle[0]) ?? 0], "stages form a cycle: \(cycle.joined(separator: " -> "))")
    }
    for (index, stage) in spec.stages.enumerated() {
      for need in stage.needs ?? [] where (names.firstIndex(of: need) ?? 0) > index {
        // GitLab falls back to stage order when needs are too many; stages must be listed in order.
        throw fail(list[index], "stage '\(stage.name)' needs '\(need)', which comes after it; list '\(need)' first")
      }
    }
  }
}

extension Node {
  var bool: Bool? {
    switch scalar?.string {
    case "true"?: return true
    case "false"?: return false
    default: return nil
    }
  }
}


/// The whole file, or the errno of what failed (open or read), for the OS's own reason.
func readFile(_ path: String) throws -> Data {
  let fd = open(path, O_RDONLY | O_CLOEXEC)
  guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
  defer { close(fd) }
  var data = Data()
  var buffer = [UInt8](repeating: 0, count: 1 << 16)
  while true {
    let count = read(fd, &buffer, buffer.count)
    if count < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    if count == 0 { return data }
    data.append(contentsOf: buffer[0..<count])
  }
}
