import ArgumentParser
import Foundation
import PipelineSpec

/// ci-gen: a pipeline spec in, a valid, limit-aware .gitlab-ci.yml out. The command bodies
/// are PipelineSpec's (`Generation`); this parses arguments and prints.
struct CIGen: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ci-gen",
    abstract: "Turn a pipeline spec (docs/ci-gen.md) into a .gitlab-ci.yml for the ci-slurm executor.",
    subcommands: [Generate.self, Check.self, Graph.self, Explain.self, Template.self])
}

/// Runs a subcommand body, turning spec errors into one line and exit 1.
func reporting(_ body: () throws -> Void) throws {
  do {
    try body()
  } catch let error as SpecError {
    FileHandle.standardError.write(Data("ci-gen: \(error)\n".utf8))
    throw ExitCode(1)
  }
}

struct Generate: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Write the .gitlab-ci.yml (same spec, same bytes).")
  @Argument(help: "The pipeline spec (YAML).") var spec: String
  @Option(name: .shortAndLong, help: "Where the .gitlab-ci.yml goes (default: stdout); required above max_jobs_per_stage items, whose list goes beside it.") var output: String?

  func run() throws {
    try reporting {
      switch try Generation.generate(GenerationPaths(spec: spec, output: output)) {
      case .printed(let text): FileHandle.standardOutput.write(Data(text.utf8))
      case .wrote(let messages): for line in messages { FileHandle.standardError.write(Data("ci-gen: \(line)\n".utf8)) }
      }
    }
  }
}

struct Check: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Validate the spec and its plan; write nothing.")
  @Argument(help: "The pipeline spec (YAML).") var spec: String

  func run() throws {
    try reporting { for line in try Generation.check(spec: spec) { print(line) } }
  }
}

struct Graph: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print the job graph as Mermaid (default) or DOT.")
  @Argument(help: "The pipeline spec (YAML).") var spec: String
  @Option(help: "mermaid or dot") var format: String = "mermaid"

  func run() throws {
    guard ["mermaid", "dot"].contains(format) else { throw ValidationError("--format is mermaid or dot, not \(format)") }
    try reporting {
      let plan = try GenerationPaths(spec: spec, output: nil).plan()
      print(format == "dot" ? GraphRenderer.dot(plan) : GraphRenderer.mermaid(plan), terminator: "")
    }
  }
}

struct Explain: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print, per job, the sbatch line the executor will run.")
  @Argument(help: "The pipeline spec (YAML).") var spec: String

  func run() throws {
    try reporting {
      for line in try SbatchExplanation.lines(for: try GenerationPaths(spec: spec, output: nil).plan()) { print(line) }
    }
  }
}

struct Template: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print ci-templates/slurm.yml (hidden .slurm jobs to extend).")
  func run() throws { print(TemplateRenderer.slurmTemplates(), terminator: "") }
}

CIGen.main()
