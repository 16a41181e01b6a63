import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { defaultPython } from '../../activities/sandbox/runtime.js';

export type Definition = { compiles: false; error: string } | { compiles: true; defines: boolean };

const script = `
import ast, json, sys
source, name = json.load(sys.stdin)
try:
    tree = compile(source, "<source>", "exec", ast.PyCF_ONLY_AST)
    compile(tree, "<source>", "exec")
except (SyntaxError, ValueError) as e:
    where = f"line {e.lineno}: " if getattr(e, "lineno", None) else ""
    print(json.dumps({"compiles": False, "error": f"{type(e).__name__}: {where}{getattr(e, 'msg', None) or e}"}))
    sys.exit(0)

def bound(body):
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in getattr(node, "targets", None) or [node.target]:
                for n in ast.walk(target):
                    if isinstance(n, ast.Name):
                        yield n.id
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                yield "*" if alias.name == "*" else (alias.asname or alias.name.split(".")[0])
        for field in ("body", "orelse", "finalbody", "handlers"):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from bound(getattr(node, field, None) or [])

names = set(bound(tree.body))
print(json.dumps({"compiles": True, "defines": name in names or "*" in names}))
`;

/**
 * Whether Python source compiles and defines `name` at module level (a def, class, assignment or
 * import, also inside top-level if/try/with blocks), read with Python's own `ast`. Nothing runs:
 * the check is safe on any machine and takes milliseconds, where defining the code needs the sandbox.
 */
export async function definition(source: string, name: string): Promise<Definition> {
  // Any Python 3 parses; the project's is preferred, as it is the sandbox's.
  const python = existsSync(defaultPython) ? defaultPython : 'python3';
  const { stdout } = await execa(python, ['-I', '-c', script], { input: JSON.stringify([source, name]), timeout: 30_000 });
  return JSON.parse(stdout) as Definition;
}
