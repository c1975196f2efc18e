"""The jar cache: the Kafka broker and Spark's extra jars, resolved from Maven Central at setup.

``pipeline-props setup`` (and ``./dev``) calls :func:`ensure_jars`, which runs
``mvn dependency:copy-dependencies`` on the two small POMs beside this module.
At run and test time only :func:`kafka_classpath` and :func:`spark_jars` are
used: they never download, and say how to fill the cache when it is empty.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from pipeline_props.errors import InfrastructureError

SETUP_HINT = "run `./dev setup` (or `pipeline-props setup`) once to fill the jar cache"
_POMS = {"kafka": "kafka.pom.xml", "spark": "spark.pom.xml"}


def _pom(kind: str) -> Path:
    return Path(str(resources.files("pipeline_props.infra").joinpath("poms").joinpath(_POMS[kind])))


def cache_dir(home: str | Path, kind: str) -> Path:
    """Cache folder of one jar set, named after its POM's hash so a version bump refetches."""
    digest = hashlib.sha256(_pom(kind).read_bytes()).hexdigest()[:12]
    return Path(home) / "jars" / f"{kind}-{digest}"


def ensure_jars(home: str | Path, *, quiet: bool = True) -> dict[str, Path]:
    """Resolve both jar sets into the cache unless already there. Needs mvn and the network."""
    out: dict[str, Path] = {}
    for kind in _POMS:
        target = cache_dir(home, kind)
        if (target / ".complete").exists():
            out[kind] = target
            continue
        mvn = shutil.which("mvn")
        if mvn is None:
            raise InfrastructureError(
                "jar cache", "Maven (mvn) is not installed", hint="apt-get install -y maven"
            )
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        cmd = [mvn, "-B", "-f", str(_pom(kind)), "dependency:copy-dependencies",
               "-DincludeScope=runtime", f"-DoutputDirectory={partial}"]
        if quiet:
            cmd.insert(2, "-q")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise InfrastructureError("jar cache", f"mvn could not resolve the {kind} jars:\n{tail}")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        (target / ".complete").write_text("ok\n")
        out[kind] = target
    return out


def _cached(home: str | Path, kind: str) -> list[Path]:
    target = cache_dir(home, kind)
    if not (target / ".complete").exists():
        raise InfrastructureError("jar cache", f"the {kind} jars are not in {target}", hint=SETUP_HINT)
    return sorted(target.glob("*.jar"))


def kafka_classpath(home: str | Path) -> str:
    """Classpath of the Kafka broker (KRaft) from the cache."""
    return ":".join(str(p) for p in _cached(home, "kafka"))


def _artifact(jar: Path) -> str:
    """``kafka-clients-3.9.2.jar`` -> ``kafka-clients``."""
    parts = jar.stem.split("-")
    while parts and parts[-1][:1].isdigit():
        parts.pop()
    return "-".join(parts)


def spark_jars(home: str | Path) -> list[Path]:
    """Jars Spark needs beyond pyspark's own: the Kafka source, its client, the JDBC driver.

    Jars whose artifact pyspark already ships (scala, hadoop, slf4j, lz4...) are
    left out so two versions of one library never meet on the classpath.
    """
    import pyspark

    shipped = {_artifact(p) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    return [p for p in _cached(home, "spark") if _artifact(p) not in shipped]
