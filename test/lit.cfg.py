# lit configuration for gai's FileCheck tests.
import os

import lit.formats

config.name = "gai"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.gai_obj_root, "test")
config.excludes = ["unit", "fuzz", "fixtures", "inputs", "CMakeLists.txt"]

config.environment["PATH"] = os.pathsep.join(
    [config.gai_tools_dir, config.llvm_tools_dir, os.environ.get("PATH", "")])
# Colour codes would get in FileCheck's way.
config.environment["TERM"] = "dumb"

# Sharded jobs on the CPU need mpirun and the MPI communicator's plugin.
import glob
import shutil
if shutil.which("mpirun") and glob.glob(
        os.path.join(config.gai_obj_root, "**", "libgai-mpi.so"), recursive=True):
    config.available_features.add("mpi")

config.substitutions.append(
    ("%fixtures", os.path.join(config.test_source_root, "fixtures")))
config.substitutions.append(
    ("%inputs", os.path.join(config.test_source_root, "frontend", "inputs")))
