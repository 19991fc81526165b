"""The import parsers and resolvers on real code: installed packages where they ship the
language (Python, C++), realistic snippets where none is installed (JS/TS, Java, C#, Go)."""

from __future__ import annotations

import os

from pack_fixtures import SITE, package_files

from codemill.pack import imports, resolve


def _files(package: str, suffixes: tuple[str, ...]) -> dict[str, str]:
    return {r.path: r.content for r in package_files(package) if r.path.endswith(suffixes)}


# ---------------------------------------------------------------------------- Python


def test_python_parser_reads_every_import_form():
    text = (
        "import os, sys as system\n"
        "import a.b.c as abc\n"
        "from . import sessions\n"
        "from .models import Response\n"
        "from ..pkg.sub import (\n    first,\n    second as two,\n)\n"
        "from x.y import *\n"
        "    from lazy.mod import thing  # inside a function\n"
    )
    found = imports.python_imports(text)
    assert imports.PyImport(0, "os") in found and imports.PyImport(0, "sys") in found
    assert imports.PyImport(0, "a.b.c") in found
    assert imports.PyImport(1, "", ("sessions",)) in found
    assert imports.PyImport(1, "models", ("Response",)) in found
    assert imports.PyImport(2, "pkg.sub", ("first", "second")) in found
    assert imports.PyImport(0, "x.y", ()) in found
    assert imports.PyImport(0, "lazy.mod", ("thing",)) in found


def test_python_graph_on_the_installed_requests_package():
    files = _files("requests", (".py",))
    graph = resolve.python_graph(files)
    # requests/api.py: `from . import sessions`, `from .models import Response`, and under
    # `if TYPE_CHECKING:` `from . import _types as _t`
    assert graph["requests/api.py"] == {"requests/sessions.py", "requests/models.py", "requests/_types.py"}
    init = graph["requests/__init__.py"]
    for dep in ("api", "exceptions", "models", "sessions", "status_codes", "utils", "packages", "__version__"):
        assert f"requests/{dep}.py" in init
    assert not any("urllib3" in d for deps in graph.values() for d in deps)  # not in this repository


def test_python_absolute_imports_resolve_from_the_source_root():
    files = {
        "src/app/__init__.py": "",
        "src/app/core.py": "import app.util\nfrom app import models\nimport json\n",
        "src/app/util.py": "from app.models import Model\n",
        "src/app/models.py": "X = 1\n",
        "tools/json.py": "print('not the stdlib')\n",
        "tools/run.py": "import json\nimport helpers\n",
        "tools/helpers.py": "",
    }
    graph = resolve.python_graph(files)
    assert graph["src/app/core.py"] == {"src/app/util.py", "src/app/models.py"}
    assert graph["src/app/util.py"] == {"src/app/models.py"}
    # a script's folder is first on sys.path: its neighbours shadow everything else
    assert graph["tools/run.py"] == {"tools/json.py", "tools/helpers.py"}


# ---------------------------------------------------------------------------- C / C++


def test_c_includes_on_installed_pyarrow_sources():
    root = os.path.join(SITE, "pyarrow", "src", "arrow", "python")
    text = open(os.path.join(root, "arrow_to_pandas.cc"), encoding="utf-8").read()
    includes = imports.c_includes(text)
    assert "arrow/python/arrow_to_pandas.h" in includes
    assert not any(i.startswith("<") for i in includes)  # angle includes are not the repository's
    files = {
        f"pyarrow/src/arrow/python/{n}": open(os.path.join(root, n), encoding="utf-8").read()
        for n in sorted(os.listdir(root))
        if n.endswith((".cc", ".h"))
    }
    graph = resolve.c_graph(files, set(files))
    deps = graph["pyarrow/src/arrow/python/arrow_to_pandas.cc"]
    assert "pyarrow/src/arrow/python/arrow_to_pandas.h" in deps  # found through the include root
    assert "pyarrow/src/arrow/python/numpy_interop.h" in deps


def test_c_include_next_to_the_includer_wins():
    files = {"lib/a/util.h": "", "lib/b/util.h": "", "lib/a/main.c": '#include "util.h"\n#include <stdio.h>\n'}
    assert resolve.c_graph(files, set(files))["lib/a/main.c"] == {"lib/a/util.h"}


# ---------------------------------------------------------------------------- JavaScript / TypeScript


def test_js_ts_relative_imports_and_requires():
    files = {
        "web/src/index.ts": (
            "import React from 'react';\n"
            "import { Button, type Props } from './components/Button';\n"
            'import type { Store } from "../state/store";\n'
            "import './styles.css';\n"
            "export * from './api/client.js';\n"
            "const lazy = () => import('./pages/Home');\n"
        ),
        "web/src/components/Button.tsx": "export const Button = () => null;\n",
        "web/state/store.ts": "export interface Store {}\n",
        "web/src/styles.css": "body {}\n",
        "web/src/api/client.ts": "export const get = 1;\n",
        "web/src/pages/Home/index.jsx": "export default 1;\n",
        "web/server.js": "const util = require('./lib/util');\nconst express = require('express');\n",
        "web/lib/util.js": "module.exports = {};\n",
    }
    assert "react" not in imports.js_imports(files["web/src/index.ts"])
    graph = resolve.js_graph(files, set(files))
    assert graph["web/src/index.ts"] == {
        "web/src/components/Button.tsx",
        "web/state/store.ts",
        "web/src/styles.css",
        "web/src/api/client.ts",
        "web/src/pages/Home/index.jsx",
    }
    assert graph["web/server.js"] == {"web/lib/util.js"}


# ---------------------------------------------------------------------------- Java


def test_java_imports_map_to_source_files():
    app = (
        "package com.acme.app;\n\n"
        "import java.util.List;\n"
        "import com.acme.model.User;\n"
        "import com.acme.util.*;\n"
        "import static com.acme.model.Roles.ADMIN;\n\n"
        "public class App {}\n"
    )
    files = {
        "src/main/java/com/acme/app/App.java": app,
        "src/main/java/com/acme/model/User.java": "package com.acme.model;\npublic class User {}\n",
        "src/main/java/com/acme/model/Roles.java": "package com.acme.model;\npublic class Roles {}\n",
        "src/main/java/com/acme/util/Strings.java": "package com.acme.util;\n",
        "src/main/java/com/acme/util/Dates.java": "package com.acme.util;\n",
    }
    parsed = imports.java_imports(app)
    assert imports.JavaImport("com.acme.util", wildcard=True) in parsed
    assert imports.JavaImport("com.acme.model.Roles.ADMIN", static=True) in parsed
    assert resolve.java_graph(files)["src/main/java/com/acme/app/App.java"] == {
        "src/main/java/com/acme/model/User.java",
        "src/main/java/com/acme/model/Roles.java",
        "src/main/java/com/acme/util/Strings.java",
        "src/main/java/com/acme/util/Dates.java",
    }


# ---------------------------------------------------------------------------- C#


def test_csharp_usings_map_to_declaring_files():
    files = {
        "Api/Controllers/UsersController.cs": (
            "using System;\nusing Acme.Domain;\nusing static Acme.Common.Guard;\nusing Db = Acme.Data;\n\n"
            "namespace Acme.Api.Controllers\n{\n    public class UsersController {}\n}\n"
        ),
        "Domain/User.cs": "namespace Acme.Domain;\n\npublic record User(string Name);\n",
        "Domain/Role.cs": "namespace Acme.Domain\n{\n    public enum Role { Admin }\n}\n",
        "Common/Guard.cs": "namespace Acme.Common\n{\n    public static class Guard {}\n}\n",
        "Data/Context.cs": "namespace Acme.Data { public class Context {} }\n",
    }
    assert imports.csharp_namespaces(files["Domain/User.cs"]) == ["Acme.Domain"]
    assert resolve.csharp_graph(files)["Api/Controllers/UsersController.cs"] == {
        "Domain/User.cs",
        "Domain/Role.cs",
        "Common/Guard.cs",
        "Data/Context.cs",
    }


# ---------------------------------------------------------------------------- Go


def test_go_imports_within_the_module():
    main = (
        "package main\n\n"
        'import (\n\t"fmt"\n\tlog "github.com/sirupsen/logrus"\n'
        '\t"github.com/acme/shop/internal/store"\n\tapi "github.com/acme/shop/pkg/api"\n)\n\n'
        'import "github.com/acme/shop/internal/util"\n'
    )
    repo = {
        "go.mod": "module github.com/acme/shop\n\ngo 1.22\n",
        "cmd/shop/main.go": main,
        "internal/store/store.go": "package store\n",
        "internal/store/store_test.go": "package store\n",
        "internal/util/util.go": "package util\n",
        "pkg/api/api.go": "package api\n",
        "pkg/api/types.go": "package api\n",
    }
    go_files = {p: t for p, t in repo.items() if p.endswith(".go")}
    assert "fmt" in imports.go_imports(main) and "github.com/sirupsen/logrus" in imports.go_imports(main)
    assert resolve.go_graph(go_files, repo)["cmd/shop/main.go"] == {
        "internal/store/store.go",
        "internal/util/util.go",
        "pkg/api/api.go",
        "pkg/api/types.go",
    }
