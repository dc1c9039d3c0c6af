# The lab master's top file: every host converges to its role in the cluster
# that the pillar describes.
base:
  '*':
    - pgfailover
