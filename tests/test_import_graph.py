"""The package's layers, read from the source with ``ast``: every import statement counts, those
inside functions too. No cycle; nothing in ``dlutil/`` imports a root facade; each layer imports
only its own layer and the ones beneath it."""
import ast
import os

from conftest import ROOT

FACADES = {'base_model', 'batch_generator', 'constraints', 'models', 'main'}

# lowest first; a module may import its own layer and those before it
LAYERS = [
    {'errors', 'files', 'h5output', 'torchfile', 'extras', 'rng', '_program', 'processes',
     'threads', 'contract', 'flags', '_server_dies_with_parent'},
    {'data', 'sequences'},
    {'training', 'genotypes', 'simulation'},
    {'models'},
    {'definition', 'preflight', 'search', 'interpret', 'variants', 'prepare', 'predictions'},
    {'runner', 'cli', '__main__', 'export', 'api'},
]


def layer_of(module):
    """The layer of ``dlutil.x.y``: the layer that names ``x``."""
    part = module.split('.')[1] if module.count('.') else '__init__'
    for number, names in enumerate(LAYERS):
        if part in names:
            return number
    return None


def project_modules():
    """{module name: path} for the package, the facades and main.py."""
    found = {}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith('.') and d not in (
            'tests', 'benchmarks', 'examples', '__pycache__', 'build')]
        for name in files:
            if name.endswith('.py') and name != 'setup.py':
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == '__init__':
                    parts = parts[:-1]
                found['.'.join(parts)] = path
    return found


def imports(path, module, known):
    """The project modules ``module`` imports (top-level and inside functions)."""
    package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
    edges = set()
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read(), path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            names = [f'{base}.{alias.name}' for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:  # a name inside a module: the module
                name = name.rpartition('.')[0]
            if name and name != module:
                edges.add(name)
    return edges


def graph():
    known = project_modules()
    return {module: imports(path, module, known) for module, path in known.items()}


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read():
    edges = graph()
    # a known edge of each kind: top-level, inside a function, a facade's re-export
    assert 'dlutil.training.model' in edges['dlutil.training.tasks']
    assert 'dlutil.runner' in edges['dlutil.cli']  # imported inside main()
    assert 'dlutil.models.basset' in edges['models.basset']
    assert len(edges) > 100


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_cycles_are_found_when_there_are_some():
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]


def test_nothing_in_dlutil_imports_a_facade():
    upward = sorted((module, target) for module, targets in graph().items()
                    if module.startswith('dlutil') for target in targets
                    if target.split('.')[0] in FACADES)
    assert upward == []


def test_each_layer_imports_only_its_own_and_those_beneath():
    edges = graph()
    unplaced = sorted(m for m in edges if m.startswith('dlutil.') and layer_of(m) is None)
    assert unplaced == []
    upward = sorted((module, target) for module, targets in edges.items()
                    if module.startswith('dlutil.') for target in targets
                    if target.startswith('dlutil.') and layer_of(target) > layer_of(module))
    assert upward == []


def test_root_facades_hold_no_logic():
    """base_model.py, batch_generator.py, constraints.py and models/*.py only re-export."""
    known = project_modules()
    for module, path in known.items():
        if module.split('.')[0] not in FACADES - {'main'}:
            continue
        tree = ast.parse(open(path, encoding='utf-8').read())
        for node in tree.body:
            allowed = (ast.Import, ast.ImportFrom, ast.Expr, ast.Assign, ast.If)
            assert isinstance(node, allowed), f'{path}: {ast.dump(node)[:80]}'
            if isinstance(node, ast.Assign):
                assert [t.id for t in node.targets] == ['__all__'], path


def defined_names(path):
    """The public names a module defines at its top level (defs, classes, assignments)."""
    names = []
    for node in ast.parse(open(path, encoding='utf-8').read()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return [n for n in names if not n.startswith('_')]


def test_each_zoo_facade_reexports_every_public_name_of_its_module():
    """models/<name>.py gives the same objects as dlutil.models.<name>, all of them."""
    import importlib
    folder = os.path.join(ROOT, 'dlutil', 'models')
    for file in sorted(f for f in os.listdir(folder) if f.endswith('.py') and f[0] != '_'):
        name = file[:-3]
        real = importlib.import_module(f'dlutil.models.{name}')
        facade = importlib.import_module(f'models.{name}')
        missing = [n for n in defined_names(os.path.join(folder, file))
                   if getattr(facade, n, None) is not getattr(real, n)]
        assert missing == [], f'models/{name}.py lacks {missing}: add them to its import'
