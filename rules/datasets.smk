# Paper-scale datasets: verified downloads (mirrors, retries, checksums), safe unpacking, parsing
# into the prepared form. Only jobs that a config asks for run; the embedded default needs none.


rule download_dataset:
    output:
        "resources/datasets/{ds}/downloads/{filename}",
    log:
        "logs/datasets/{ds}/download_{filename}.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    script:
        "../scripts/download_dataset.py"


rule prepare_dataset:
    input:
        dataset_downloads,
    output:
        unpacked=directory("resources/datasets/{ds}/unpacked"),
        raw=directory("resources/datasets/{ds}/raw"),
        prepared=directory("resources/datasets/{ds}/prepared"),
    log:
        "logs/datasets/{ds}/prepare.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    script:
        "../scripts/prepare_dataset.py"
