#!/usr/bin/env cwl-runner
# Load a multi-sample VCF/BCF into this node's Beacon (genomeport beacon load-vcf).
# The tool talks to the node's database: the worker hands it the node's
# configuration only for runs of callers listed in GENOMEPORT_WES_NODE_CALLERS.
cwlVersion: v1.2
class: CommandLineTool
label: load a VCF into this node's Beacon
hints:
  DockerRequirement: {dockerPull: "genomeport:latest"}
baseCommand: [genomeport, beacon, load-vcf, --quiet]
inputs:
  vcf:
    type: File
    secondaryFiles: [{pattern: .tbi, required: false}, {pattern: .csi, required: false}]
    inputBinding: {position: 2}
  dataset:
    type: string
    inputBinding: {position: 1, prefix: --dataset}
outputs:
  report: {type: stdout}
stdout: beacon-load.txt
