import Foundation
import PipelineSpec
import TestSizes
import Testing
import WorkerTasks

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

func load(_ relative: String) throws -> PipelineSpec {
  let text = try String(contentsOfFile: "\(root)/\(relative)", encoding: .utf8)
  return try PipelineSpec.parse(text, file: relative)
}

func generate(_ spec: PipelineSpec, output: String? = nil) throws -> String {
  let plan = try PipelinePlan(spec: spec, manifest: "ci-items/pipeline.tsv")
  return CIFileRenderer.render(plan, command: "ci-gen generate \(spec.file)" + (output.map { " -o \($0)" } ?? ""))
}

/// Validates YAML files against GitLab's own schema (../shared/schemas/gitlab-ci.json,
/// draft-07) with Python's jsonschema; returns the error messages.
func schemaErrors(_ files: [String]) throws -> [String] {
  let schema = URL(fileURLWithPath: root).deletingLastPathComponent().appendingPathComponent("shared/schemas/gitlab-ci.json").path
  let program = """
    import json, sys, yaml, jsonschema
    schema = json.load(open(sys.argv[1]))
    validator = jsonschema.Draft7Validator(schema)
    for path in sys.argv[2:]:
        for error in validator.iter_errors(yaml.safe_load(open(path))):
            print(f"{path}: {'/'.join(map(str, error.absolute_path))}: {error.message[:200]}")
    """
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = ["python3", "-c", program, schema] + files
  let pipe = Pipe()
  process.standardOutput = pipe
  process.standardError = pipe
  try process.run()
  let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  process.waitUntilExit()
  #expect(process.terminationStatus == 0, "the validator failed to run: \(output)")
  return output.split(separator: "\n").map(String.init)
}

func temporaryFile(_ text: String, name: String = "out.yml") throws -> String {
  let directory = NSTemporaryDirectory() + "cigen-" + UUID().uuidString
  try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  let path = "\(directory)/\(name)"
  try text.write(toFile: path, atomically: true, encoding: .utf8)
  return path
}

@Suite(.tags(.large)) struct GeneratedFilesTests {
  @Test(arguments: ["examples/svd-mapreduce", "examples/data-pipeline", "examples/python-step"])
  func committedExamplesAreWhatTheSpecGenerates(example: String) throws {
    let generated = try generate(try load("\(example)/pipeline.yml"), output: "\(example)/.gitlab-ci.yml")
    let committed = try String(contentsOfFile: "\(root)/\(example)/.gitlab-ci.yml", encoding: .utf8)
    #expect(generated == committed, "regenerate with: ci-gen generate \(example)/pipeline.yml -o \(example)/.gitlab-ci.yml")
  }

  @Test func committedTemplatesAreWhatCIGenWrites() throws {
    let committed = try String(contentsOfFile: "\(root)/ci-templates/slurm.yml", encoding: .utf8)
    #expect(TemplateRenderer.slurmTemplates() == committed, "regenerate with: ci-gen template > ci-templates/slurm.yml")
  }

  @Test func everyExampleAndTemplateValidatesAgainstGitLabsSchema() throws {
    let files = ["examples/svd-mapreduce/.gitlab-ci.yml", "examples/data-pipeline/.gitlab-ci.yml", "ci-templates/slurm.yml", "examples/hello-slurm/.gitlab-ci.yml", "examples/python-step/.gitlab-ci.yml"]
    #expect(try schemaErrors(files.map { "\(root)/\($0)" }) == [])
  }

  @Test func theSchemaCheckCanFail() throws {
    // A control: a job whose script is a number and whose needs is a mapping is rejected.
    let bad = try temporaryFile("stages: [a]\njob:\n  stage: a\n  script: 5\n  needs: {x: 1}\n")
    #expect(try !schemaErrors([bad]).isEmpty)
  }

  @Test func largePlansValidateToo() throws {
    var spec = try load("examples/data-pipeline/pipeline.yml")
    spec.items = (0..<120).map { PipelineSpec.Item(id: "item-\($0)", params: [("FILE", "f\($0).csv")], line: 1) }
    spec.maxJobsPerStage = 200
    let file = try temporaryFile(try generate(spec))
    #expect(try schemaErrors([file]) == [])
  }
}

@Suite(.tags(.medium)) struct PlanTests {
  @Test func sameSpecSameBytes() throws {
    let spec = try load("examples/data-pipeline/pipeline.yml")
    #expect(try generate(spec) == generate(spec))
  }

  @Test func perItemBranchesNeedOnlyTheirOwnItem() throws {
    let plan = try PipelinePlan(spec: try load("examples/data-pipeline/pipeline.yml"), manifest: "m.tsv")
    let job = { (name: String) in plan.jobs.first { $0.name == name } }
    #expect(job("download sub-01")?.needs == [])
    #expect(job("convert sub-02")?.needs == ["download sub-02"])
    #expect(job("analyze sub-01")?.schedulerParameters == "--cpus-per-task=1 --mem=1G --time=00:15:00 --array=0-3%2")
    #expect(job("analyze-gather sub-01")?.needs == ["analyze sub-01"])
    #expect(job("visualize")?.needs == ["analyze-gather sub-01", "analyze-gather sub-02"])
    #expect(job("publish")?.needs == ["visualize"])
    #expect(plan.stages == ["download", "convert", "analyze", "analyze-gather", "visualize", "publish"])
    // CI timeout = Slurm time + the 30-minute queue margin.
    #expect(job("download sub-01")?.timeoutSeconds == 600 + 1800)
    // Raw data only before and in convert.
    #expect(job("convert sub-01")?.beforeScript.contains { $0.hasPrefix("export DATA_RAW=") } == true)
    #expect(job("analyze sub-01")?.beforeScript.contains { $0.hasPrefix("export DATA_RAW=") } == false)
    #expect(job("analyze sub-01")?.variables.first { $0.name == "DATASET_ID" }?.value == "sub-01")
  }

  @Test func moreThanFiftyNeedsFallBackToStageOrder() throws {
    var spec = try load("examples/data-pipeline/pipeline.yml")
    spec.items = (0..<60).map { PipelineSpec.Item(id: "i\($0)", params: [], line: 1) }
    spec.maxJobsPerStage = 100
    let plan = try PipelinePlan(spec: spec, manifest: "m.tsv")
    for job in plan.jobs { #expect((job.needs?.count ?? 0) <= PipelinePlan.maxNeeds) }
    #expect(plan.jobs.first { $0.name == "visualize" }?.needs == nil)
  }

  @Test func tenThousandItemsBecomeArraysNotThousandsOfJobs() throws {
    var spec = try load("examples/data-pipeline/pipeline.yml")
    spec.items = (0..<10_000).map { PipelineSpec.Item(id: "s\($0)", params: [("FILE", "s\($0).csv")], line: 1) }
    spec.maxArraySize = 100_000
    let plan = try PipelinePlan(spec: spec, manifest: "ci-items/data.tsv")
    #expect(plan.jobs.map(\.name) == ["download", "convert", "analyze", "analyze-gather", "visualize", "publish"])
    let analyze = try #require(plan.jobs.first { $0.name == "analyze" })
    // throttle 2 per item, folded into one array: 2 x 10,000 items at once, not 2 in total.
    #expect(analyze.schedulerParameters.hasSuffix("--array=0-39999%20000"))
    #expect(plan.notes.contains { $0.hasPrefix("stage analyze: throttle 2 per item becomes %20000 over the one array") })
    #expect(plan.manifest()?.split(separator: "\n").count == 10_001)
    #expect(plan.manifest()?.hasPrefix("id\tFILE\ns0\ts0.csv\n") == true)
  }

  @Test func anArrayOverTheClustersMaximumIsAnError() throws {
    var spec = try load("examples/data-pipeline/pipeline.yml")
    spec.items = (0..<300).map { PipelineSpec.Item(id: "s\($0)", params: [], line: 1) }
    #expect {
      try PipelinePlan(spec: spec, manifest: "m.tsv")
    } throws: { "\($0)".contains("exceeds max_array_size (1001)") }
  }
}

/// A task of an array, run by bash as the job runs it, finds its item in the list.
@Suite(.tags(.large)) struct ArrayTaskScriptTests {
  @Test func arrayModeTasksFindTheirItem() throws {
    var spec = try load("examples/data-pipeline/pipeline.yml")
    spec.items = (0..<3).map { PipelineSpec.Item(id: "s\($0)", params: [("FILE", "f \($0).csv")], line: 1) }
    spec.maxJobsPerStage = 2
    let plan = try PipelinePlan(spec: spec, manifest: "items.tsv")
    let analyze = try #require(plan.jobs.first { $0.name == "analyze" })
    let directory = NSTemporaryDirectory() + "arr-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try plan.manifest()!.write(toFile: "\(directory)/items.tsv", atomically: true, encoding: .utf8)
    // Task 9 of 3 items x 4 shards is item 2, shard 1.
    let script = "CI_PROJECT_DIR=\(directory); SLURM_ARRAY_TASK_ID=9\n" + analyze.beforeScript.filter { !$0.hasPrefix("export DATA_") }.joined(separator: "\n")
      + "\necho \"$DATASET_ID|$FILE|$SLURM_ARRAY_TASK_ID|$SLURM_ARRAY_TASK_COUNT\""
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", script]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(output == "s2|f 2.csv|1|4\n")
  }

  @Test func allowPartialLetsAPartlyFailedScatterPassAndValidates() throws {
    let spec = try PipelineSpec.parse("""
      pipeline: p
      stages:
        - name: map
          script: [echo map]
          scatter: {tasks: 4, allow_partial: true}
        - name: strict
          script: [echo strict]
          scatter: {tasks: 4}
      """, file: "spec.yml")
    let yaml = try generate(spec)
    // The golden: exactly this block, on the scatter that asked for it only.
    #expect(yaml.contains("""
          - "echo map"
        allow_failure:
          exit_codes:
            - 75

      """))
    #expect(yaml.components(separatedBy: "allow_failure:").count == 2)
    #expect(try schemaErrors([try temporaryFile(yaml)]) == [])
  }
}

@Suite(.tags(.small)) struct BadSpecTests {
  let valid = """
    pipeline: p
    items:
      - id: a
      - id: b
    stages:
      - name: one
        script: [echo one]
        resources: {cpus: 1, mem: 1G, time: 10m}
      - name: two
        script: [echo two]
    """

  func error(_ text: String) -> String {
    do {
      _ = try PipelinePlan(spec: try PipelineSpec.parse(text, file: "spec.yml"), manifest: "m.tsv")
      return "no error"
    } catch {
      return "\(error)"
    }
  }

  @Test func theValidSpecIsValid() { #expect(error(valid) == "no error") }

  @Test func unknownKeysGetADidYouMeanWithLineAndColumn() {
    #expect(error(valid.replacingOccurrences(of: "resources:", with: "resorces:"))
      == "spec.yml:8:5: unknown key 'resorces' in stage 1; did you mean 'resources'?")
    #expect(error(valid.replacingOccurrences(of: "pipeline: p", with: "pipline: p"))
      == "spec.yml:1:1: unknown key 'pipline' in the spec; did you mean 'pipeline'?")
  }

  @Test func malformedResources() {
    #expect(error(valid.replacingOccurrences(of: "mem: 1G", with: "mem: 200X"))
      == "spec.yml:8:31: stage 'one'.resources.mem '200X' is not a memory size (write e.g. 512M, 2G, 1T)")
    // Read as the driver reads --mem (SlurmMemory): past an exabyte, or zero, is no size.
    for size in ["2000000000T", "0G"] {
      #expect(error(valid.replacingOccurrences(of: "mem: 1G", with: "mem: \(size)")).hasSuffix("'\(size)' is not a memory size (write e.g. 512M, 2G, 1T)"))
    }
    #expect(error(valid.replacingOccurrences(of: "mem: 1G", with: "mem: 512k")) == "no error")
    #expect(error(valid.replacingOccurrences(of: "time: 10m", with: "time: 5:0:0:0"))
      == "spec.yml:8:41: stage 'one'.resources.time '5:0:0:0' is not a time (write e.g. 10m, 1h30m, 2d, or HH:MM:SS)")
    #expect(error(valid.replacingOccurrences(of: "cpus: 1", with: "cpus: many")).contains("cpus must be a whole number"))
    #expect(error(valid.replacingOccurrences(of: "cpus: 1,", with: "cpus: 1, extra: \"--output=/x\",")).contains("--output (-o) is not allowed"))
  }

  @Test func duplicateItemsAndEmptyItems() {
    #expect(error(valid.replacingOccurrences(of: "id: b", with: "id: a")) == "spec.yml:4:5: duplicate item id 'a' (first at line 3)")
    #expect(error("pipeline: p\nitems: []\nstages:\n  - name: s\n    script: x\n")
      == "spec.yml:2:8: items is empty: list at least one item, or leave 'items' out")
  }

  @Test func needsAnUnknownStageOrACycle() {
    #expect(error(valid + "\n    needs: [on]") == "spec.yml:9:5: stage 'two' needs 'on', which is not a stage; did you mean 'one'?")
    let cycle = valid.replacingOccurrences(of: "script: [echo one]", with: "script: [echo one]\n    needs: [two]") + "\n    needs: [one]"
    #expect(error(cycle).contains("stages form a cycle: one -> two -> one"))
    // Only the stages of the cycle, at the first of them.
    let behind = "pipeline: p\nstages:\n  - {name: a, script: [x], needs: [b]}\n  - {name: b, script: [x], needs: [c]}\n  - {name: c, script: [x], needs: [b]}\n"
    #expect(error(behind) == "spec.yml:4:5: stages form a cycle: b -> c -> b")
  }

  @Test func yamlSyntaxErrorsHaveAPosition() {
    #expect(error("pipeline: p\nstages: [\n").hasPrefix("spec.yml:3:1: YAML syntax error"))
  }

  @Test func tasksAreCheckedAgainstCIWorkersOwnList() {
    let typo = valid.replacingOccurrences(of: "script: [echo two]", with: "task: dowload")
    #expect(error(typo) == "spec.yml:10:11: stage 'two'.task 'dowload' is not a ci-worker task; did you mean 'download'? (or write script: for any command)")
    #expect(error(valid.replacingOccurrences(of: "script: [echo two]", with: "task: svd-map")) == "no error")
  }

  @Test func valueTypesAreChecked() {
    let stringArgs = valid.replacingOccurrences(of: "script: [echo two]", with: "task: publish\n    args: --out public")
    #expect(error(stringArgs) == "spec.yml:11:11: stage 'two'.args must be a list, one word each: [--out, public]")
    #expect(error(valid + "\n    reads_raw: yes please") == "spec.yml:11:16: stage 'two'.reads_raw must be true or false")
    #expect(error(valid.replacingOccurrences(of: "script: [echo two]", with: "script: \"\"")) == "spec.yml:10:13: stage 'two'.script is empty or has an empty command; write the commands to run")
    #expect(error(valid + "\n    args: [--x]") == "spec.yml:11:11: stage 'two'.args go with task:; with script:, write the arguments in the script")
  }

  @Test func allowPartialMustBeABoolean() {
    let text = valid + "\n    scatter: {tasks: 2, allow_partial: sometimes}"
    #expect(error(text) == "spec.yml:11:40: stage 'two'.scatter.allow_partial must be true or false")
  }

    @Test func throttleAboveTasksIsAnError() {
    let spec = valid + "\n    scatter: {tasks: 4, throttle: 9}"
    #expect(error(spec) == "spec.yml:11:14: stage 'two'.scatter.throttle 9 is more than its 4 tasks; write throttle: 4 or less, or leave it out")
  }

  @Test func aDuplicateKeyIsOneLineAtTheRepeat() {
    let spec = valid.replacingOccurrences(of: "script: [echo two]", with: "script: [echo two]\n    script: [echo again]")
    #expect(error(spec) == "spec.yml:11:5: duplicate key 'script' (first at line 10); keep one")
    #expect(error("pipeline: p\nstages:\n  - {name: a, name: b, script: [x]}\n") == "spec.yml:3:15: duplicate key 'name' (first at line 3); keep one")
  }
}

@Suite(.tags(.small)) struct RunAsSpecTests {
  @Test func runAsGivesEveryJobTheIDToken() throws {
    let spec = try PipelineSpec.parse(
      "pipeline: p\nrun_as: {audience: https://gitlab.example.com}\nstages:\n  - {name: hello, script: [echo hi]}\n", file: "p.yml")
    let yaml = CIFileRenderer.render(try PipelinePlan(spec: spec, manifest: "m.tsv"), command: "ci-gen generate p.yml")
    #expect(yaml.contains("\ndefault:\n  id_tokens:\n    CI_SLURM_ID_TOKEN:\n      aud: \"https://gitlab.example.com\"\n"))
    #expect(throws: (any Error).self) { try PipelineSpec.parse("pipeline: p\nrun_as: {}\nstages: []\n", file: "p.yml") }
  }
}

/// Runs the built ci-gen in `directory`; returns status, stdout, stderr.
func cigen(_ arguments: [String], in directory: String) throws -> (status: Int32, out: String, err: String) {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "\(root)/.build/debug/ci-gen")
  process.arguments = arguments
  process.currentDirectoryURL = URL(fileURLWithPath: directory)
  let out = Pipe()
  let err = Pipe()
  process.standardOutput = out
  process.standardError = err
  try process.run()
  let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  process.waitUntilExit()
  return (process.terminationStatus, stdout, stderr)
}

/// A repository (a `.git` folder is all ci-gen looks for) with a 60-item spec.
func repositoryWithManyItems() throws -> String {
  let directory = NSTemporaryDirectory() + "cigen-repo-" + UUID().uuidString
  try FileManager.default.createDirectory(atPath: "\(directory)/.git", withIntermediateDirectories: true)
  try FileManager.default.createDirectory(atPath: "\(directory)/specs", withIntermediateDirectories: true)
  let items = (0..<60).map { "  - {id: s\($0), params: {FILE: f\($0).csv}}" }.joined(separator: "\n")
  let spec = "pipeline: many\nitems:\n\(items)\nstages:\n  - name: work\n    script: [echo \"$DATASET_ID $FILE\"]\n    scatter: {tasks: 2, throttle: 1}\n"
  try spec.write(toFile: "\(directory)/specs/many.yml", atomically: true, encoding: .utf8)
  return directory
}

/// ci-gen generate's body in-process (`Generation`): where the files go and how the
/// generated file names them.
@Suite(.tags(.medium)) struct GenerationTests {
  @Test func pathsAreNamedFromTheRepositoryHoldingTheOutput() throws {
    let repo = try repositoryWithManyItems()
    let paths = GenerationPaths(spec: "\(repo)/specs/../specs/many.yml", output: "\(repo)/ci/generated.yml")
    #expect(paths.projectRoot.path == URL(fileURLWithPath: repo).standardizedFileURL.path)
    #expect(paths.specFromRoot == "specs/many.yml")
    #expect(paths.outputFromRoot == "ci/generated.yml")
    #expect(paths.manifestFromRoot == "ci/ci-items/many.tsv")
    let beside = GenerationPaths(spec: "\(repo)/specs/many.yml", output: "\(repo)/generated.yml")
    #expect(beside.manifestFromRoot == "ci-items/many.tsv")
  }

  @Test func outsideARepositoryTheOutputsFolderIsTheRoot() throws {
    let directory = NSTemporaryDirectory() + "cigen-plain-" + UUID().uuidString
    let paths = GenerationPaths(spec: "\(directory)/specs/p.yml", output: "\(directory)/out/ci.yml")
    #expect(paths.projectRoot.path == URL(fileURLWithPath: "\(directory)/out").standardizedFileURL.path)
    #expect(paths.specFromRoot == "../specs/p.yml")
    #expect(paths.outputFromRoot == "ci.yml")
  }

  @Test func thePipelineAndItsItemsListAreWrittenTogether() throws {
    let repo = try repositoryWithManyItems()
    let outcome = try Generation.generate(GenerationPaths(spec: "\(repo)/specs/many.yml", output: "\(repo)/ci/generated.yml"))
    guard case .wrote(let messages) = outcome else { Issue.record("nothing written: \(outcome)"); return }
    #expect(messages.last == "wrote \(repo)/ci/generated.yml: 1 jobs in 1 stages")
    let yaml = try String(contentsOfFile: "\(repo)/ci/generated.yml", encoding: .utf8)
    #expect(yaml.hasPrefix("# Generated by ci-gen from specs/many.yml;"))
    #expect(yaml.contains("ci/ci-items/many.tsv"))
    #expect(try String(contentsOfFile: "\(repo)/ci/ci-items/many.tsv", encoding: .utf8).hasPrefix("id\tFILE\ns0\tf0.csv\n"))
  }

  @Test func stdoutGetsThePipelineUnlessAnItemsListMustGoBesideIt() throws {
    let spec = try temporaryFile("pipeline: p\nstages:\n  - {name: hello, script: [echo hi]}\n", name: "p.yml")
    guard case .printed(let text) = try Generation.generate(GenerationPaths(spec: spec, output: nil)) else {
      Issue.record("not printed")
      return
    }
    #expect(text.contains("\n\"hello\":\n  stage: \"hello\"\n"))
    let repo = try repositoryWithManyItems()
    #expect(throws: SpecError.self) { try Generation.generate(GenerationPaths(spec: "\(repo)/specs/many.yml", output: nil)) }
  }

  @Test func anUnwritableOutputIsASpecError() throws {
    let spec = try temporaryFile("pipeline: p\nstages:\n  - {name: hello, script: [echo hi]}\n", name: "p.yml")
    #expect {
      try Generation.generate(GenerationPaths(spec: spec, output: "\(spec)/out.yml"))
    } throws: { "\($0)" == "cannot write \(spec)/out.yml: Not a directory" }
  }

  @Test func checkSaysWhatThePlanHolds() throws {
    let repo = try repositoryWithManyItems()
    #expect(try Generation.check(spec: "\(repo)/specs/many.yml").first == "\(repo)/specs/many.yml: ok: 60 items, 1 jobs in 1 stages")
  }
}

@Suite(.tags(.large)) struct CIGenCommandTests {
  @Test func theCLIWritesNothingOnError() throws {
    let bin = "\(root)/.build/debug/ci-gen"
    let spec = try temporaryFile(BadSpecTests().valid.replacingOccurrences(of: "mem: 1G", with: "mem: 200X"), name: "spec.yml")
    let output = URL(fileURLWithPath: spec).deletingLastPathComponent().appendingPathComponent(".gitlab-ci.yml").path
    try "previous content\n".write(toFile: output, atomically: true, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: bin)
    process.arguments = ["generate", spec, "-o", output]
    let pipe = Pipe()
    process.standardError = pipe
    try process.run()
    let stderr = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationStatus == 1)
    #expect(stderr.hasPrefix("ci-gen: \(spec):8:31: stage 'one'.resources.mem '200X'"))
    #expect(stderr.split(separator: "\n").count == 1)
    #expect(try String(contentsOfFile: output, encoding: .utf8) == "previous content\n")
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: URL(fileURLWithPath: spec).deletingLastPathComponent().path)
    #expect(leftovers.sorted() == [".gitlab-ci.yml", "spec.yml"])
  }

  @Test func everyTaskCIGenAcceptsIsOneCIWorkerRuns() throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "\(root)/.build/debug/ci-worker")
    process.arguments = ["--help"]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let help = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    // The SUBCOMMANDS section: a name two spaces in, then its abstract.
    let section = (help.components(separatedBy: "SUBCOMMANDS:").last ?? "").components(separatedBy: "\n\n  See ").first ?? ""
    let names = section.split(separator: "\n").filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
      .compactMap { $0.split(separator: " ").first.map(String.init) }
    #expect(names == WorkerTask.names)
  }

  @Test func anUnreadableSpecSaysWhyInOneLine() throws {
    let result = try cigen(["check", "nope.yml"], in: NSTemporaryDirectory())
    #expect(result.status == 1)
    #expect(result.err == "ci-gen: cannot read nope.yml: No such file or directory\n")
  }

  @Test func anUnwritableOutputSaysWhyInOneLine() throws {
    let spec = "\(root)/examples/svd-mapreduce/pipeline.yml"
    let result = try cigen(["generate", spec, "-o", "\(spec)/out.yml"], in: NSTemporaryDirectory())
    #expect(result.status == 1)
    #expect(result.err == "ci-gen: cannot write \(spec)/out.yml: Not a directory\n")
  }

  @Test func theItemsListGoesBesideTheOutputAndTheJobsFindItThere() throws {
    let repo = try repositoryWithManyItems()
    let result = try cigen(["generate", "specs/many.yml", "-o", "ci/generated.yml"], in: repo)
    #expect(result.status == 0, "\(result.err)")
    let yaml = try String(contentsOfFile: "\(repo)/ci/generated.yml", encoding: .utf8)
    #expect(FileManager.default.fileExists(atPath: "\(repo)/ci/ci-items/many.tsv"))
    #expect(yaml.contains("\\\"$CI_PROJECT_DIR/ci/ci-items/many.tsv\\\""))
    #expect(yaml.contains("--array=0-119%60"))
    // A task of the array, run in the project as GitLab checks it out, finds its item.
    let plan = try PipelinePlan(spec: try PipelineSpec.load(file: "\(repo)/specs/many.yml"), manifest: "ci/ci-items/many.tsv")
    let lines = plan.jobs[0].beforeScript.filter { !$0.hasPrefix("export DATA_") }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", "CI_PROJECT_DIR=\(repo) SLURM_ARRAY_TASK_ID=119\n" + lines.joined(separator: "\n") + "\necho \"$DATASET_ID $FILE\""]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(output == "s59 f59.csv\n")
  }

  @Test func theBytesDoNotDependOnTheWorkingDirectoryOrHowPathsAreTyped() throws {
    let repo = try repositoryWithManyItems()
    _ = try cigen(["generate", "specs/many.yml", "-o", "ci/a.yml"], in: repo)
    _ = try cigen(["generate", "\(repo)/specs/../specs/many.yml", "-o", "\(repo)/ci/b.yml"], in: NSTemporaryDirectory())
    _ = try cigen(["generate", "../specs/many.yml", "-o", "b2.yml"], in: "\(repo)/ci")
    let a = try String(contentsOfFile: "\(repo)/ci/a.yml", encoding: .utf8)
    let b = try String(contentsOfFile: "\(repo)/ci/b.yml", encoding: .utf8)
    let b2 = try String(contentsOfFile: "\(repo)/ci/b2.yml", encoding: .utf8)
    #expect(a.hasPrefix("# Generated by ci-gen from specs/many.yml;"))
    #expect(a.replacingOccurrences(of: "ci/a.yml", with: "ci/b.yml") == b)
    #expect(b2 == b.replacingOccurrences(of: "ci/b.yml", with: "ci/b2.yml"))
  }

  @Test func stdoutWithAnItemsListIsRefused() throws {
    let repo = try repositoryWithManyItems()
    let result = try cigen(["generate", "specs/many.yml"], in: repo)
    #expect(result.status == 1)
    #expect(result.out == "")
    #expect(result.err == "ci-gen: 60 items make the jobs read an items list beside the pipeline file; write it with -o FILE (stdout has no beside)\n")
  }
}

@Suite(.tags(.small)) struct SbatchExplanationTests {
  /// The line is the driver's own (`SbatchCommand`, `JobLayout`) with placeholders.
  @Test func explainsTheDriversOwnLine() throws {
    let spec = try PipelineSpec.parse("pipeline: p\nstages:\n  - {name: hello, script: [echo hi]}\n", file: "p.yml")
    let lines = try SbatchExplanation.lines(for: try PipelinePlan(spec: spec, manifest: "m.tsv"))
    #expect(lines.dropFirst() == [
      "hello:",
      "  sbatch --parsable '--job-name=ci-<project-slug>-<CI_JOB_ID>'"
        + " '--output=<data_root>/jobs/<CI_JOB_ID>/build_script-1/output.log' '--chdir=<data_root>/builds/<CI_JOB_ID>'"
        + " --export=ALL --no-requeue --time=01:00:00 '<data_root>/jobs/<CI_JOB_ID>/build_script-1/wrapper.sh'",
    ])
  }
}
