/// ci-worker's subcommands, the one list both ci-worker (which maps each case to its
/// command, exhaustively) and ci-gen (which checks a stage's `task:` against it) read, so a
/// task ci-gen accepts is one ci-worker runs. No dependencies: ci-gen must not link the
/// workers' LAPACK and SQLite to know their names.
public enum WorkerTask: String, CaseIterable, Sendable {
  case download, convert, analyze, gather
  case svdMap = "svd-map"
  case svdReduce = "svd-reduce"
  case visualize, publish

  public static var names: [String] { allCases.map(\.rawValue) }
}
