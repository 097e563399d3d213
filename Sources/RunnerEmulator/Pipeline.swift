import DependencyGraph
public import Foundation
import Yams

/// The part of `.gitlab-ci.yml` that ci-local understands: stages, variables, default,
/// local includes, extends, hidden jobs, script/before_script/after_script, needs,
/// parallel (count and matrix), timeout, allow_failure, when, artifacts (paths, when, the reports' files).
/// Anything it cannot honour is an error or a warning, never silently different.
public struct Pipeline: Sendable {
  public var stages: [String]
  public var variables: [(String, String)]
  public var jobs: [PipelineJob]
  public var warnings: [String]

  public struct Error: Swift.Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public var description: String { message }
  }

  public static let defaultStages = [".pre", "build", "test", "deploy", ".post"]
  static let globalKeys: Set<String> = [
    "stages", "variables", "default", "include", "workflow", "image", "services", "cache",
    "before_script", "after_script", "spec",
  ]

  /// The `default:` keys ci-local copies into jobs that do not set them; others warn.
  static let honouredDefaults = ["before_script", "after_script", "timeout", "variables", "id_tokens"]

  public func job(named name: String) -> PipelineJob? { jobs.first { $0.name == name } }

  /// Loads a file, following local includes relative to `projectDirectory`.
  public static func load(file: String, projectDirectory: String) throws -> Pipeline {
    let root = try loadMerged(file: file, projectDirectory: projectDirectory, depth: 0)
    return try build(root)
  }

  static func loadYAML(_ file: String) throws -> Node {
    guard let data = FileManager.default.contents(atPath: file) else {
      // FileManager hides errno; open() again for the OS's reason.
      let fd = open(file, O_RDONLY)
      let reason = fd < 0 ? String(cString: strerror(errno)) : "not a readable file"
      if fd >= 0 { close(fd) }
      throw Error(message: "cannot read \(file): \(reason)")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw Error(message: "\(file) is not UTF-8 text") }
    do {
      guard let node = try Yams.compose(yaml: text) else { return Node.mapping([:]) }
      guard node.mapping != nil else { throw Error(message: "\(file): the top level must be a mapping of jobs and keywords") }
      return node
    } catch let error as YamlError {
      throw Error(message: yamlError(error, file: file))
    }
  }

  /// One line with the position, not Yams's multi-line dump of the whole document.
  static func yamlError(_ error: YamlError, file: String) -> String {
    switch error {
    case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
      .composer(let context, let problem, let mark, _):
      let what = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
      return "\(file):\(mark.line):\(mark.column): YAML error: \(what)"
    case .duplicatedKeysInMapping(let duplicates, let context):
      let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
      return "\(file):\(context.mark.line):\(context.mark.column): duplicate key \(keys) in this mapping; keep one"
    default:
      return "\(file): YAML error: \("\(error)".split(separator: "\n").first.map(String.init) ?? "unreadable")"
    }
  }

  static func loadMerged(file: String, projectDirectory: String, depth: Int) throws -> Node {
    guard depth < 20 else { throw Error(message: "\(file): includes nested more than 20 deep") }
    let node = try loadYAML(file)
    guard let mapping = node.mapping, let include = mapping["include"] else { return node }
    var merged = Node.mapping([:])
    var includes: [String] = []
    func add(_ item: Node) throws {
      if let path = item.string, !path.contains("://") {
        includes.append(path)
      } else if let local = item.mapping?["local"]?.string {
        includes.append(local)
      } else {
        throw Error(message: "\(file): ci-local supports only local includes (include: 'path' or - local: path)")
      }
    }
    if let list = include.sequence { try list.forEach(add) } else { try add(include) }
    for path in includes {
      let full = path.hasPrefix("/") ? projectDirectory + path : "\(projectDirectory)/\(path)"
      merged = deepMerge(merged, try loadMerged(file: full, projectDirectory: projectDirectory, depth: depth + 1))
    }
    var own = mapping
    own["include"] = nil
    return deepMerge(merged, .mapping(own))
  }

  /// GitLab's merge for include and extends: mappings merge key by key, anything else
  /// (lists included) is replaced by the later value.
  static func deepMerge(_ base: Node, _ override: Node) -> Node {
    guard var baseMap = base.mapping, let overMap = override.mapping else { return override }
    for (key, value) in overMap {
      if let existing = baseMap[key] { baseMap[key] = deepMerge(existing, value) } else { baseMap[key] = value }
    }
    return .mapping(baseMap)
  }

  static func build(_ root: Node) throws -> Pipeline {
    guard let mapping = root.mapping else { throw Error(message: "the pipeline is not a mapping") }
    var warnings: [String] = []
    var stages = defaultStages
    if let list = mapping["stages"] {
      guard let items = list.sequence else { throw Error(message: "stages: must be a list") }
      let named = try items.map { item -> String in
        guard let name = item.string else { throw Error(message: "stages: every entry must be a name") }
        return name
      }
      stages = [".pre"] + named.filter { $0 != ".pre" && $0 != ".post" } + [".post"]
    }
    // Keywords ci-local cannot honour are named once each, with the jobs that use them,
    // so a run never differs from GitLab's in silence (and 60 jobs' tags are one line).
    for key in ["workflow", "image", "services", "cache", "before_script", "after_script", "spec"] where mapping[Node(key)] != nil {
      warnings.append("top-level '\(key)' is ignored by ci-local\(key == "workflow" ? " (every job runs, whatever its rules)" : "")")
    }
    let globalVariables = try variables(mapping["variables"], context: "variables")
    let defaults = mapping["default"]?.mapping
    if let defaults {
      for (key, _) in defaults {
        guard let name = key.string, !honouredDefaults.contains(name) else { continue }
        warnings.append("default: '\(name)' is ignored by ci-local")
      }
    }
    var ignored: [String: [String]] = [:]
    var rawJobs: [(String, Node)] = []
    for (keyNode, value) in mapping {
      guard let key = keyNode.string else { continue }
      if globalKeys.contains(key) { continue }
      rawJobs.append((key, value))
    }
    let templates = Dictionary(rawJobs, uniquingKeysWith: { _, b in b })
    var jobs: [PipelineJob] = []
    for (name, node) in rawJobs where !name.hasPrefix(".") {
      guard node.mapping != nil else { throw Error(message: "job '\(name)' must be a mapping") }
      var resolved = try resolveExtends(name: name, node: node, templates: templates, seen: [])
      if let defaults {
        for key in honouredDefaults where resolved.mapping?[Node(key)] == nil {
          if let value = defaults[Node(key)], var map = resolved.mapping {
            map[Node(key)] = value
            resolved = .mapping(map)
          }
        }
      }
      jobs += try PipelineJob.expand(name: name, node: resolved, globalVariables: globalVariables, ignored: &ignored)
    }
    for (key, users) in ignored.sorted(by: { $0.key < $1.key }) {
      let shown = users.prefix(3).joined(separator: ", ") + (users.count > 3 ? " and \(users.count - 3) more" : "")
      warnings.append("'\(key)' is ignored by ci-local (job\(users.count == 1 ? "" : "s") \(shown))")
    }
    for job in jobs where !stages.contains(job.stage) {
      throw Error(message: "job '\(job.name)': stage '\(job.stage)' is not in stages (\(stages.joined(separator: ", ")))")
    }
    // needs: names of jobs, or of a parallel job (meaning all its instances).
    let names = Set(jobs.map(\.name))
    let bases = Set(jobs.map(\.baseName))
    for job in jobs {
      for need in job.needs where !names.contains(need) && !bases.contains(need) {
        throw Error(message: "job '\(job.name)' needs '\(need)', which is not a job of this pipeline")
      }
    }
    let pipeline = Pipeline(stages: stages, variables: globalVariables, jobs: jobs, warnings: warnings)
    try pipeline.checkAcyclic()
    return pipeline
  }

  static func resolveExtends(name: String, node: Node, templates: [String: Node], seen: [String]) throws -> Node {
    guard let mapping = node.mapping, let extends = mapping["extends"] else { return node }
    guard !seen.contains(name) else {
      throw Error(message: "extends cycle: \((seen + [name]).joined(separator: " -> "))")
    }
    let parents = extends.sequence?.compactMap(\.string) ?? [extends.string].compactMap { $0 }
    var merged = Node.mapping([:])
    for parent in parents {
      guard let template = templates[parent] else {
        throw Error(message: "job '\(name)' extends '\(parent)', which does not exist")
      }
      merged = deepMerge(merged, try resolveExtends(name: parent, node: template, templates: templates, seen: seen + [name]))
    }
    var own = mapping
    own["extends"] = nil
    return deepMerge(merged, .mapping(own))
  }

  static func variables(_ node: Node?, context: String) throws -> [(String, String)] {
    guard let node else { return [] }
    guard let mapping = node.mapping else { throw Error(message: "\(context): must be a mapping of NAME: value") }
    return try mapping.map { key, value in
      guard let name = key.string else { throw Error(message: "\(context): a variable name must be a string") }
      if let nested = value.mapping {
        return (name, nested["value"]?.string ?? "")
      }
      guard let scalar = value.scalar else {
        throw Error(message: "\(context): \(name) must be a string, number or boolean")
      }
      return (name, scalar.string)
    }
  }

  func checkAcyclic() throws {
    let needsByName = Dictionary(jobs.map { ($0.name, $0.needs) }, uniquingKeysWith: { first, _ in first })
    let cycle = DependencyGraph.firstCycle(from: jobs.map(\.name)) { name in
      let needs = needsByName[name] ?? []
      return jobs.filter { needs.contains($0.name) || needs.contains($0.baseName) }.map(\.name)
    }
    if let cycle { throw Error(message: "needs cycle: \(cycle.joined(separator: " -> "))") }
  }

  /// Jobs a job waits for: its `needs`, or every job of the earlier stages.
  public func prerequisites(of job: PipelineJob) -> [PipelineJob] {
    if let needs = job.needsList {
      return jobs.filter { other in needs.contains(other.name) || needs.contains(other.baseName) }
    }
    let index = stages.firstIndex(of: job.stage) ?? 0
    return jobs.filter { (stages.firstIndex(of: $0.stage) ?? 0) < index }
  }
}

/// One runnable job (after extends, defaults and parallel expansion).
public struct PipelineJob: Sendable, Equatable {
  public enum When: String, Sendable { case onSuccess = "on_success", always, onFailure = "on_failure", manual, never }

  public var name: String
  /// The name before parallel expansion (what `needs` may refer to).
  public var baseName: String
  public var stage: String
  public var script: [String]
  public var beforeScript: [String]
  public var afterScript: [String]
  public var variables: [Pair]
  /// nil when the job has no `needs` keyword (it then waits for earlier stages).
  public var needsList: [String]?
  public var timeoutSeconds: Int?
  public var allowFailure: Bool
  public var allowedExitCodes: [Int32]
  public var when: When
  public var artifactPaths: [String]
  /// `artifacts:when`: which outcomes keep `artifactPaths` (on_success, on_failure, always).
  public var artifactsWhen = When.onSuccess
  /// `artifacts:reports:` files (junit, annotations, ...): kept whatever the outcome, as
  /// GitLab keeps reports.
  public var reportPaths: [String] = []
  /// `id_tokens:`: variable name -> audiences. ci-local signs them as GitLab would.
  public var idTokens: [IDTokenRequest] = []

  public struct IDTokenRequest: Sendable, Equatable {
    public var variable: String
    public var audiences: [String]
  }

  public struct Pair: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
      self.name = name
      self.value = value
    }
  }

  public var needs: [String] { needsList ?? [] }

  static func strings(_ node: Node?, _ context: String) throws -> [String] {
    guard let node else { return [] }
    if let text = node.string { return [text] }
    guard let list = node.sequence else { throw Pipeline.Error(message: "\(context) must be a string or a list of strings") }
    return try list.flatMap { try strings($0, context) }
  }

  /// Keywords ci-local accepts but does not act on (it is the only runner, runs every job
  /// once, keeps artifacts per pipeline).
  static let ignoredKeys = [
    "rules", "only", "except", "image", "services", "cache", "retry", "dependencies", "interruptible", "resource_group",
    "environment", "coverage", "tags",
  ]

  static func expand(name: String, node: Node, globalVariables: [(String, String)], ignored: inout [String: [String]]) throws -> [PipelineJob] {
    let map = node.mapping!
    let known: Set<String> = [
      "stage", "script", "before_script", "after_script", "variables", "needs", "parallel", "timeout",
      "allow_failure", "when", "artifacts", "tags", "rules", "image", "services", "cache", "retry",
      "dependencies", "interruptible", "resource_group", "environment", "only", "except", "coverage", "id_tokens",
    ]
    for (key, _) in map {
      if let key = key.string, !known.contains(key) {
        throw Pipeline.Error(message: "job '\(name)': unknown keyword '\(key)'")
      }
    }
    for key in ignoredKeys where map[Node(key)] != nil { ignored[key, default: []].append(name) }
    for (key, _) in map["artifacts"]?.mapping ?? [:] where !["paths", "when", "reports"].contains(key.string ?? "") {
      ignored["artifacts:\(key.string ?? "?")", default: []].append(name)
    }
    let script = try strings(map["script"], "job '\(name)': script")
    guard !script.isEmpty else { throw Pipeline.Error(message: "job '\(name)' has no script") }
    var needs: [String]? = nil
    if let needsNode = map["needs"] {
      guard let list = needsNode.sequence else { throw Pipeline.Error(message: "job '\(name)': needs must be a list") }
      needs = try list.map { item in
        if let text = item.string { return text }
        if let job = item.mapping?["job"]?.string { return job }
        throw Pipeline.Error(message: "job '\(name)': every needs entry must be a job name or {job: name}")
      }
    }
    var allowFailure = false
    var exitCodes: [Int32] = []
    if let allow = map["allow_failure"] {
      if let flag = allow.bool { allowFailure = flag } else if let codes = allow.mapping?["exit_codes"] {
        exitCodes = (codes.sequence ?? [codes]).compactMap { $0.int.map(Int32.init) }
      }
    }
    var when = When.onSuccess
    if let text = map["when"]?.string {
      guard let value = When(rawValue: text) else { throw Pipeline.Error(message: "job '\(name)': unknown when: \(text)") }
      when = value
    }
    var timeout: Int? = nil
    if let text = map["timeout"]?.string {
      guard let seconds = DurationText.seconds(text) else {
        throw Pipeline.Error(message: "job '\(name)': timeout '\(text)' is not a duration (e.g. 1h 30m, 10 minutes)")
      }
      timeout = seconds
    }
    let artifactPaths = try strings(map["artifacts"]?.mapping?["paths"], "job '\(name)': artifacts:paths")
    var artifactsWhen = When.onSuccess
    if let text = map["artifacts"]?.mapping?["when"]?.string {
      guard let value = When(rawValue: text), [.onSuccess, .onFailure, .always].contains(value) else {
        throw Pipeline.Error(message: "job '\(name)': artifacts:when must be on_success, on_failure or always, not \(text)")
      }
      artifactsWhen = value
    }
    var reportPaths: [String] = []
    for (key, value) in map["artifacts"]?.mapping?["reports"]?.mapping ?? [:] {
      reportPaths += try strings(value, "job '\(name)': artifacts:reports:\(key.string ?? "?")")
    }
    let jobVariables = try Pipeline.variables(map["variables"], context: "job '\(name)': variables")
    var idTokens: [IDTokenRequest] = []
    if let tokens = map["id_tokens"] {
      guard let entries = tokens.mapping else { throw Pipeline.Error(message: "job '\(name)': id_tokens must be a mapping of variable names") }
      for (key, value) in entries {
        guard let variable = key.string, let audience = value.mapping?["aud"] else {
          throw Pipeline.Error(message: "job '\(name)': each id_tokens entry needs aud, e.g. CI_SLURM_ID_TOKEN: {aud: https://gitlab.example.com}")
        }
        idTokens.append(IDTokenRequest(variable: variable, audiences: try strings(audience, "job '\(name)': id_tokens:\(variable):aud")))
      }
    }
    var base = PipelineJob(
      name: name, baseName: name, stage: map["stage"]?.string ?? "test", script: script,
      beforeScript: try strings(map["before_script"], "job '\(name)': before_script"),
      afterScript: try strings(map["after_script"], "job '\(name)': after_script"),
      variables: (globalVariables + jobVariables).map { Pair(name: $0.0, value: $0.1) },
      needsList: needs, timeoutSeconds: timeout, allowFailure: allowFailure, allowedExitCodes: exitCodes,
      when: when, artifactPaths: artifactPaths)
    base.idTokens = idTokens
    base.artifactsWhen = artifactsWhen
    base.reportPaths = reportPaths
    guard let parallel = map["parallel"] else { return [base] }
    if let count = parallel.int {
      guard (1...200).contains(count) else { throw Pipeline.Error(message: "job '\(name)': parallel must be 1 to 200") }
      return (1...count).map { index in
        var job = base
        job.name = "\(name) \(index)/\(count)"
        job.variables += [Pair(name: "CI_NODE_INDEX", value: String(index)), Pair(name: "CI_NODE_TOTAL", value: String(count))]
        return job
      }
    }
    guard let matrix = parallel.mapping?["matrix"]?.sequence else {
      throw Pipeline.Error(message: "job '\(name)': parallel must be a number or {matrix: [...]}")
    }
    var combinations: [[(String, String)]] = []
    for entry in matrix {
      guard let entryMap = entry.mapping else { throw Pipeline.Error(message: "job '\(name)': each matrix entry must be a mapping") }
      var partial: [[(String, String)]] = [[]]
      for (key, value) in entryMap {
        guard let variable = key.string else { continue }
        let values = value.sequence?.compactMap { $0.scalar?.string } ?? [value.scalar?.string].compactMap { $0 }
        partial = partial.flatMap { prefix in values.map { prefix + [(variable, $0)] } }
      }
      combinations += partial
    }
    guard combinations.count <= 200 else {
      throw Pipeline.Error(message: "job '\(name)': parallel:matrix makes \(combinations.count) jobs; GitLab allows 200")
    }
    return combinations.enumerated().map { index, combination in
      var job = base
      job.name = "\(name): [\(combination.map(\.1).joined(separator: ", "))]"
      job.variables += combination.map { Pair(name: $0.0, value: $0.1) }
      job.variables += [
        Pair(name: "CI_NODE_INDEX", value: String(index + 1)), Pair(name: "CI_NODE_TOTAL", value: String(combinations.count)),
      ]
      return job
    }
  }
}

/// GitLab's human durations: `3600`, `1h 30m`, `10 minutes`, `2 hours 5 min`. This is
/// GitLab's language for `timeout:` (a bare number is seconds, words and spaces allowed),
/// not Slurm's, so it is parsed here, once, and not by `SlurmTime`.
public enum DurationText {
  public static func seconds(_ text: String) -> Int? {
    if let plain = Int(text.trimmingCharacters(in: .whitespaces)) { return plain }
    var total = 0
    var number: Int? = nil
    var matchedAny = false
    let tokens = text.lowercased().replacingOccurrences(of: ",", with: " ")
    var scanner = Substring(tokens)
    while !scanner.isEmpty {
      scanner = scanner.drop { $0 == " " }
      if scanner.isEmpty { break }
      let digits = scanner.prefix { $0.isNumber }
      if !digits.isEmpty {
        guard number == nil else { return nil }
        number = Int(digits)
        scanner = scanner.dropFirst(digits.count)
        continue
      }
      let word = scanner.prefix { $0.isLetter }
      guard !word.isEmpty, let value = number else { return nil }
      scanner = scanner.dropFirst(word.count)
      let unit: Int
      switch word {
      case "s", "sec", "secs", "second", "seconds": unit = 1
      case "m", "min", "mins", "minute", "minutes": unit = 60
      case "h", "hr", "hrs", "hour", "hours": unit = 3600
      case "d", "day", "days": unit = 86400
      default: return nil
      }
      total += value * unit
      number = nil
      matchedAny = true
    }
    return matchedAny && number == nil ? total : nil
  }
}

extension Node {
  var int: Int? { scalar.flatMap { Int($0.string) } }
  var bool: Bool? {
    guard let text = scalar?.string else { return nil }
    if text == "true" { return true }
    if text == "false" { return false }
    return nil
  }
}
