"""Mutants of a reference solution by standard AST mutation operators (mutmut / MutPy style).

Trusted code, run in the sandbox as a program: the source is only parsed, never executed. The
evaluation appends three assignments (SOURCE, LIMIT) and a call of main(), and reads one JSON
object from stdout. Each mutant changes exactly one site; sites are numbered in the AST's walk
order, so the mutant set of a source is the same on every run and machine (same Python).
"""
import ast
import copy
import json
import sys

ARITHMETIC = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
              ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult,
              ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.LShift: ast.RShift, ast.RShift: ast.LShift}
# Boundary shifts first (< to <=), then negations (== to !=).
COMPARISON = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
              ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
BOOLEAN = {ast.And: ast.Or, ast.Or: ast.And}


class Mutator(ast.NodeTransformer):
    """Counts mutation sites; when `target` is a site's number, applies that one mutation."""

    def __init__(self, target):
        self.target = target
        self.count = 0
        self.applied = None
        self.depth = 0

    def hit(self, operator):
        hit = self.count == self.target
        self.count += 1
        if hit:
            self.applied = operator
        return hit

    def visit_FunctionDef(self, node):
        # Only code inside functions is mutated: module-level imports and constants are setup.
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_BinOp(self, node):
        self.generic_visit(node)
        swap = ARITHMETIC.get(type(node.op))
        if self.depth and swap and self.hit("arithmetic"):
            node.op = swap()
        return node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        swap = ARITHMETIC.get(type(node.op))
        if self.depth and swap and self.hit("arithmetic"):
            node.op = swap()
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        for i, op in enumerate(node.ops):
            swap = COMPARISON.get(type(op))
            if self.depth and swap and self.hit("comparison"):
                node.ops[i] = swap()
        return node

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        swap = BOOLEAN.get(type(node.op))
        if self.depth and swap and self.hit("boolean"):
            node.op = swap()
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if self.depth and isinstance(node.op, ast.Not) and self.hit("boolean"):
            return node.operand
        return node

    def visit_Constant(self, node):
        if not self.depth:
            return node
        value = node.value
        if isinstance(value, bool):
            if self.hit("constant"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, int):
            for delta in (1, -1):
                if self.hit("constant"):
                    return ast.copy_location(ast.Constant(value + delta), node)
        return node

    def visit_Return(self, node):
        self.generic_visit(node)
        if self.depth and node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
            if self.hit("return"):
                node.value = ast.copy_location(ast.Constant(None), node.value)
        return node

    def generic_visit(self, node):
        super().generic_visit(node)
        # Statement removal: each statement of a body with more than one, replaced by `pass`.
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not self.depth or not isinstance(body, list) or len(body) < 2:
                continue
            for i, stmt in enumerate(body):
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Return)):
                    continue
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    continue  # a docstring
                if self.hit("statement"):
                    body[i] = ast.copy_location(ast.Pass(), stmt)
        return node


def mutants(source, limit):
    tree = ast.parse(source)
    original = ast.unparse(tree)
    counter = Mutator(-1)
    counter.visit(copy.deepcopy(tree))
    seen = {original}
    found = []
    for site in range(counter.count):
        mutator = Mutator(site)
        mutated = ast.fix_missing_locations(mutator.visit(copy.deepcopy(tree)))
        text = ast.unparse(mutated)
        if text in seen:
            continue
        try:
            compile(text, "<mutant>", "exec")
        except SyntaxError:
            continue
        seen.add(text)
        found.append({"site": site, "operator": mutator.applied, "source": text})
    # Evenly spaced over the sites when there are too many, so every part of the function is covered.
    if len(found) > limit:
        step = len(found) / limit
        found = [found[int(i * step)] for i in range(limit)]
    return {"sites": counter.count, "mutants": found}


def main():
    json.dump(mutants(SOURCE, LIMIT), sys.stdout)  # noqa: F821 (appended by the caller)
