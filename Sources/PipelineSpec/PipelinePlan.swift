import SbatchModel

/// The CI jobs a spec becomes, with GitLab's limits enforced: at most 50 `needs` per job
/// (beyond that the job waits for the earlier stages instead), at most
/// `maxJobsPerStage` jobs per stage (beyond that one job runs a Slurm array over the items),
/// names of at most 255 characters, every stage listed, no cycles.
public struct PipelinePlan: Sendable {
  public struct Job: Sendable, Equatable {
    public var name: String
    public var stage: String
    /// Where in the spec it came from, for the comment above it.
    public var origin: String
    public var needs: [String]?
    public var timeoutSeconds: Int
    public var schedulerParameters: String
    public var variables: [Pair]
    public var beforeScript: [String]
    public var script: [String]
    public var artifacts: [String]
    /// `allow_failure: exit_codes:` (a scatter's `allow_partial`); empty: none.
    public var allowedExitCodes: [Int32] = []
  }

  public struct Pair: Sendable, Equatable {
    public var name: String
    public var value: String
  }

  public enum ItemMode: Sendable, Equatable {
    /// One CI job per item (and stage).
    case jobs
    /// One CI job per stage, a Slurm array over the items (read from `manifest`).
    case array(manifest: String)
  }

  public var spec: PipelineSpec
  public var stages: [String]
  public var jobs: [Job]
  public var itemMode: ItemMode
  /// Decisions worth telling the user (needs dropped, array mode chosen).
  public var notes: [String]

  public static let maxNeeds = 50
  public static let maxNameLength = 255

  /// The stages a stage waits for: its `needs`, or the stage before it.
  public static func dependencies(of name: String, in spec: PipelineSpec) -> [String] {
    guard let index = spec.stages.firstIndex(where: { $0.name == name }) else { return [] }
    if let needs = spec.stages[index].needs { return needs }
    return index > 0 ? [spec.stages[index - 1].name] : []
  }

  /// `manifest` is the items file's path relative to the project (array mode only).
  public init(spec: PipelineSpec, manifest: String) throws {
    self.spec = spec
    notes = []
    let arrayMode = spec.items.count > spec.maxJobsPerStage
    itemMode = arrayMode ? .array(manifest: manifest) : .jobs
    if arrayMode {
      notes.append(
        "\(spec.items.count) items exceed max_jobs_per_stage (\(spec.maxJobsPerStage)): each per-item stage is one CI job running a Slurm array over the items (listed in \(manifest))"
      )
      for stage in spec.stages where stage.perItem {
        guard let throttle = stage.scatter?.throttle else { continue }
        let total = PipelinePlan.foldedThrottle(throttle, items: spec.items.count, tasks: stage.scatter?.tasks ?? 1)
        notes.append(
          "stage \(stage.name): throttle \(throttle) per item becomes \(total.map { "%\($0)" } ?? "no throttle") over the one array (\(throttle) x \(spec.items.count) items), as many tasks at once as one job per item would run")
      }
    }
    stages = spec.stages.flatMap { $0.gather == nil ? [$0.name] : [$0.name, "\($0.name)-gather"] }
    self.jobs = []
    var finalJobs: [String: [String: String]] = [:]  // stage -> item (or "") -> job name
    var jobs: [Job] = []
    var defaults = spec.defaults
    if defaults.timeSeconds == nil { defaults.timeSeconds = 3600 }

    for stage in spec.stages {
      let resources = stage.resources.over(defaults)
      let perItemJobs = stage.perItem && !arrayMode
      let units: [PipelineSpec.Item?] = perItemJobs ? spec.items.map { $0 } : [nil]
      for item in units {
        let name = item.map { "\(stage.name) \($0.id)" } ?? stage.name
        var job = try makeJob(name: name, stage: stage, resources: resources, item: item, arrayMode: arrayMode)
        job.needs = needs(of: stage, item: item, finalJobs: finalJobs)
        jobs.append(job)
        finalJobs[stage.name, default: [:]][item?.id ?? ""] = name
        if let gather = stage.gather {
          let gatherName = item.map { "\(stage.name)-gather \($0.id)" } ?? "\(stage.name)-gather"
          var gatherJob = try makeGather(
            name: gatherName, stage: stage, gather: gather, resources: gather.resources.over(defaults), item: item,
            arrayMode: arrayMode)
          gatherJob.needs = [name]
          jobs.append(gatherJob)
          finalJobs[stage.name, default: [:]][item?.id ?? ""] = gatherName
        }
      }
    }
    for job in jobs where job.name.count > PipelinePlan.maxNameLength {
      throw SpecError(file: spec.file, line: 1, column: 1, message: "job name '\(job.name.prefix(40))...' is longer than GitLab's 255 characters; shorten the stage or item id")
    }
    self.jobs = jobs
  }

  /// One array over all items cannot limit each item's tasks on its own; the same total as
  /// one array per item (throttle x items) keeps the load the spec asked for. nil: the
  /// total reaches the array's size, so no limit.
  static func foldedThrottle(_ throttle: Int, items: Int, tasks: Int) -> Int? {
    let total = throttle * items
    return total >= tasks * items ? nil : total
  }

  func needs(of stage: PipelineSpec.Stage, item: PipelineSpec.Item?, finalJobs: [String: [String: String]]) -> [String]? {
    var names: [String] = []
    for dependency in PipelinePlan.dependencies(of: stage.name, in: spec) {
      let produced = finalJobs[dependency] ?? [:]
      if let item, let same = produced[item.id] {
        names.append(same)  // item to item: the branch for this item only
      } else {
        names += produced.sorted { $0.key < $1.key }.map(\.value)
      }
    }
    // Keep the spec's item order, not the dictionary's.
    let order = Dictionary(uniqueKeysWithValues: spec.items.enumerated().map { ($1.id, $0) })
    names.sort { a, b in
      let ia = order[String(a.split(separator: " ").last ?? "")] ?? -1
      let ib = order[String(b.split(separator: " ").last ?? "")] ?? -1
      return ia == ib ? a < b : ia < ib
    }
    if names.count > PipelinePlan.maxNeeds { return nil }
    return names
  }

  func dataExports(_ stage: PipelineSpec.Stage) -> [String] {
    var lines: [String] = []
    if stage.readsRaw { lines.append("export DATA_RAW=\"\(spec.dataRoot)/raw\"") }
    lines.append("export DATA_DERIV=\"\(spec.dataRoot)/deriv\"")
    return lines
  }

  var paramNames: [String] {
    var seen: [String] = []
    for item in spec.items { for (name, _) in item.params where !seen.contains(name) { seen.append(name) } }
    return seen
  }

  /// In array mode a task finds its item (and shard) from SLURM_ARRAY_TASK_ID and the manifest.
  func arrayItemLines(tasksPerItem: Int) -> [String] {
    guard case .array(let manifest) = itemMode else { return [] }
    let columns = (["DATASET_ID"] + paramNames).joined(separator: " ")
    return [
      "export ITEM_INDEX=$(( SLURM_ARRAY_TASK_ID / \(tasksPerItem) )) SHARD_INDEX=$(( SLURM_ARRAY_TASK_ID % \(tasksPerItem) )) SHARD_COUNT=\(tasksPerItem)",
      "IFS=$'\\t' read -r \(columns) < <(sed -n \"$(( ITEM_INDEX + 2 ))p\" \"$CI_PROJECT_DIR/\(manifest)\")",
      "export \(columns)",
      // Workers read SLURM_ARRAY_TASK_ID/COUNT as their shard; give them the shard's.
      "export SLURM_ARRAY_TASK_ID=$SHARD_INDEX SLURM_ARRAY_TASK_COUNT=$SHARD_COUNT",
    ]
  }

  func parameters(_ resources: PipelineSpec.Resources, arrayTasks: Int?, throttle: Int?) throws -> String {
    var flags = resources.sbatchFlags()
    if let arrayTasks {
      guard arrayTasks <= spec.maxArraySize else {
        throw SpecError(
          file: spec.file, line: 1, column: 1,
          message: "a Slurm array of \(arrayTasks) tasks exceeds max_array_size (\(spec.maxArraySize)); lower scatter.tasks or raise max_array_size to the cluster's MaxArraySize")
      }
      flags.append("--array=0-\(arrayTasks - 1)" + (throttle.map { "%\($0)" } ?? ""))
    }
    return flags.joined(separator: " ")
  }

  func makeJob(name: String, stage: PipelineSpec.Stage, resources: PipelineSpec.Resources, item: PipelineSpec.Item?, arrayMode: Bool) throws -> Job {
    var variables: [Pair] = []
    var before = dataExports(stage)
    let tasksPerItem = stage.scatter?.tasks ?? 1
    var arrayTasks: Int? = stage.scatter?.tasks
    if stage.perItem && arrayMode {
      arrayTasks = spec.items.count * tasksPerItem
      before += arrayItemLines(tasksPerItem: tasksPerItem)
    } else if let scatter = stage.scatter {
      before.append("export SHARD_INDEX=$SLURM_ARRAY_TASK_ID SHARD_COUNT=\(scatter.tasks)")
    }
    if let item {
      variables.append(Pair(name: "DATASET_ID", value: item.id))
      variables += item.params.map { Pair(name: $0.0, value: $0.1) }
    }
    var throttle = stage.scatter?.throttle
    if stage.perItem && arrayMode, let perItem = throttle {
      throttle = PipelinePlan.foldedThrottle(perItem, items: spec.items.count, tasks: tasksPerItem)
    }
    let parameters = try self.parameters(resources, arrayTasks: arrayTasks, throttle: throttle)
    variables.insert(Pair(name: "SCHEDULER_PARAMETERS", value: parameters), at: 0)
    return Job(
      name: name, stage: stage.name, origin: "\(spec.displayPath) line \(stage.line): stage \(stage.name)\(item.map { ", item \($0.id) (line \($0.line))" } ?? "")",
      needs: nil, timeoutSeconds: (resources.timeSeconds ?? 3600) + spec.queueMargin, schedulerParameters: parameters,
      variables: variables, beforeScript: before, script: stage.script, artifacts: stage.artifacts,
      allowedExitCodes: stage.scatter?.allowPartial == true ? [ArraySpec.partialFailureExitCode] : [])
  }

  func makeGather(name: String, stage: PipelineSpec.Stage, gather: PipelineSpec.Gather, resources: PipelineSpec.Resources, item: PipelineSpec.Item?, arrayMode: Bool) throws -> Job {
    var variables: [Pair] = []
    var before = dataExports(stage)
    var arrayTasks: Int? = nil
    if stage.perItem && arrayMode {
      arrayTasks = spec.items.count
      before += arrayItemLines(tasksPerItem: 1)
    }
    before.append("export SHARD_COUNT=\(stage.scatter?.tasks ?? 1)")
    if let item {
      variables.append(Pair(name: "DATASET_ID", value: item.id))
      variables += item.params.map { Pair(name: $0.0, value: $0.1) }
    }
    let parameters = try self.parameters(resources, arrayTasks: arrayTasks, throttle: nil)
    variables.insert(Pair(name: "SCHEDULER_PARAMETERS", value: parameters), at: 0)
    return Job(
      name: name, stage: "\(stage.name)-gather", origin: "\(spec.displayPath) line \(gather.line): gather of stage \(stage.name)\(item.map { ", item \($0.id)" } ?? "")",
      needs: nil, timeoutSeconds: (resources.timeSeconds ?? 3600) + spec.queueMargin, schedulerParameters: parameters,
      variables: variables, beforeScript: before, script: gather.script, artifacts: [])
  }

  /// The items manifest array mode reads: a header, then one tab-separated row per item.
  public func manifest() -> String? {
    guard case .array = itemMode else { return nil }
    let names = paramNames
    var lines = [(["id"] + names).joined(separator: "\t")]
    for item in spec.items {
      let values = Dictionary(item.params, uniquingKeysWith: { _, b in b })
      lines.append(([item.id] + names.map { values[$0] ?? "" }).joined(separator: "\t"))
    }
    return lines.joined(separator: "\n") + "\n"
  }
}
