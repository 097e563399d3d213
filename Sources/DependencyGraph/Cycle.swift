/// The one cycle check of the package's dependency graphs: a .gitlab-ci.yml's `needs`
/// (RunnerEmulator) and a pipeline spec's stages (PipelineSpec). Both name the cycle in
/// their error, so this returns it rather than a yes or no.
public enum DependencyGraph {
  /// The first cycle found by a depth-first walk from each of `nodes` in order, as the
  /// nodes along it with the first one repeated at the end (`a -> b -> a`); nil when there
  /// is none. `edges` lists what a node depends on.
  public static func firstCycle<Node: Hashable>(from nodes: [Node], edges: (Node) -> [Node]) -> [Node]? {
    var finished: Set<Node> = []
    var path: [Node] = []
    var onPath: Set<Node> = []
    func visit(_ node: Node) -> [Node]? {
      if finished.contains(node) { return nil }
      if onPath.contains(node) { return Array(path[path.firstIndex(of: node)!...]) + [node] }
      path.append(node)
      onPath.insert(node)
      for next in edges(node) {
        if let cycle = visit(next) { return cycle }
      }
      path.removeLast()
      onPath.remove(node)
      finished.insert(node)
      return nil
    }
    for node in nodes {
      if let cycle = visit(node) { return cycle }
    }
    return nil
  }
}
